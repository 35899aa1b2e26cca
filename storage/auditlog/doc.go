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
//	version(1) revision(8) committed_at(8, Unix ns) kind(1) prev_hash(32)
//	actor reason labels schema_changes changes
//	hash(32)
//
// with integers big-endian, strings and lists length-prefixed (uvarint),
// labels sorted, and each change as its operation, the six identity
// strings, caveat name, caveat context (JSON with sorted keys) and
// expiration. hash is the SHA-256 of every byte before it, so it covers
// prev_hash too: each entry commits to the whole chain before it.
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
