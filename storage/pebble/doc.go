// Package pebble is Pemba's embedded datastore: a storage.Engine on
// CockroachDB's Pebble key-value store, on disk (durable once a write is
// acknowledged: every commit is synced) or in memory (Pebble's memory
// filesystem, for `--datastore memory` and tests).
//
// Every relationship is stored twice, in a forward index ordered by
// resource and a reverse index ordered by subject, and every version of it
// carries the revision that wrote it, so a reader at revision R sees
// exactly the writes committed at or before R without holding anything
// open. Writers are serialized; each write is one Pebble batch holding its
// relationship versions, its change log, its revision record and its
// audit entry with the entry's index terms (storage.AuditLog), so a
// revision and its entry are committed together or not at all. Garbage
// collection drops history but never the audit log; retention
// (Options.AuditRetention, TrimAudit) trims it. The key layout is
// described in keys.go and ARCHITECTURE.md.
//
// Callers open an engine with Open, use it through storage.Engine, and
// Close it, which also stops the background garbage collector.
package pebble
