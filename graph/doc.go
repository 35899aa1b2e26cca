// Package graph defines Pemba's relationship model: object and subject
// references, relationships with optional caveats and expirations, and their
// lossless string syntax (SpiceDB-compatible), e.g.
//
//	document:plan#viewer@group:eng#member[expiring_grant:{"ip":"10.0.0.1"}][expiration:2026-12-01T00:00:00Z]
//
// The syntax:
//
//	relationship = object "#" relation "@" subject [caveat] [expiration]
//	object       = type ":" id
//	subject      = type ":" (id | "*") ["#" (relation | "...")]
//	caveat       = "[" caveat-name [":" json-object] "]"
//	expiration   = "[expiration:" rfc3339-timestamp "]"
//
// Names and IDs follow SpiceDB's rules (see TypeNamePattern,
// RelationPattern, ObjectIDPattern). `#...` (the ellipsis) and no relation
// are the same subject, stored as Relation "". The wildcard `*` is only ever
// a whole subject ID, without a relation. The caveat and expiration blocks
// parse in either order. String writes the canonical form: caveat first,
// context as compact JSON with sorted keys, an empty context omitted,
// expiration in UTC with only the fractional digits needed. So
// ParseRelationship(r.String()) equals r for every valid r, and String is
// deterministic (fit for golden files and keys).
//
// It imports nothing from the rest of Pemba; every other package speaks in
// these types. Callers must validate untrusted input with Parse* or
// Relationship.Validate before storing it. Both report errors that match
// errors.Is(err, ErrInvalid): *ParseError (with the part and 1-based byte
// column) or *ValidationError (with the part), for mapping to
// INVALID_ARGUMENT.
//
// A relationship's identity is its Key (resource, relation, subject);
// CompareForward and CompareReverse order keys as storage's forward and
// reverse queries do. ExpiredAt is the one definition of "expired": at or
// after the expiration instant.
package graph
