// Package graph defines Pemba's relationship model: object and subject
// references, relationships with optional caveats and expirations, and their
// lossless string syntax (SpiceDB-compatible), e.g.
//
//	document:plan#viewer@group:eng#member[expiring_grant:{"ip":"10.0.0.1"}][expiration:2026-12-01T00:00:00Z]
//
// It imports nothing from the rest of Pemba; every other package speaks in
// these types. Callers must validate untrusted input with Parse* or
// Relationship.Validate before storing it.
package graph
