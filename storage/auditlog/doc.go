// Package auditlog is the engine-neutral half of the audit log: how an
// entry is encoded and hashed (Seal, Decode), which index terms it is
// stored under (Terms), and how a stored chain is checked (Verify).
// Engines store what Seal returns byte for byte and answer the range
// queries of storage.AuditLog; package audit builds queries on top.
//
// # Encoding
//
// An entry is encoded as
//
//	version(1) kind(1) actor reason labels schema_changes changes...
//	revision(8) committed_at(8, Unix ns) prev_hash(32)
//	hash(32)
//
// with integers big-endian, strings and lists length-prefixed (uvarint)
// and labels sorted. The changes run up to the trailer, each as its
// operation, a flags byte, the identity strings (resource type and id,
// relation, subject type, id and relation) that differ from the previous
// change's — a flag bit marks each one repeated — then, when flagged, the
// caveat name and context (JSON with sorted keys) and the expiration
// (Unix seconds(8), nanoseconds(4)). Consecutive changes of a write or an
// import batch mostly share types and relation, so they cost a few bytes
// beyond their IDs. hash is the SHA-256 of every byte before it, so it
// covers prev_hash too: each entry commits to the whole chain before it.
//
// Everything but the trailer is known before a write commits, so an
// engine can encode and hash the bulk of an entry (a Builder) outside its
// write critical section, and inside it only seal the trailer.
//
// # What the chain protects against
//
// Changing, inserting or deleting an entry in the middle of the log breaks
// the chain at that entry, and Verify reports it. An attacker who can
// write the datastore can still rewrite every entry after the one they
// change and recompute the hashes, or drop the newest entries; Verify
// detects both only against a hash recorded elsewhere beforehand (an
// anchor: the head hash Verify prints, kept outside the datastore).
package auditlog
