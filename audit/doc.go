// Package audit answers questions about the audit log: which changes
// touched a resource, a subject, an actor's or a ticket's writes, in a time
// or revision range, newest or oldest first — including the expirations
// that fell in the range, derived from the entries that set them — and
// who wrote the relationship a check relied on (Provenance).
//
// It reads any engine through storage.AuditLog, picking the most
// selective index term for a query and filtering the entries it names, so
// a query streams with memory bounded by one entry, however large the
// log. Package storage/auditlog defines the entries and their hash chain.
package audit
