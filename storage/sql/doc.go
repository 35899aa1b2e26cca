// Package sql is the storage.Engine for PostgreSQL and CockroachDB: one
// engine over pgx with a Dialect switch for the few places the two differ
// (schema DDL, bulk import, transaction retries).
//
// A caller must:
//   - create the tables first, with `pemba migrate` (Migrate) or by opening
//     with Config.AutoMigrate; Open refuses an unmigrated or outdated
//     database;
//   - Close the engine to release its connection pool.
//
// Revisions come from a one-row counter that each write transaction
// increments first: the row lock serializes writers, so commit order is
// revision order, a rolled-back write leaves no gap, and Watch can poll by
// revision. Each relationship version carries created_rev and deleted_rev;
// a snapshot at R sees the versions with created_rev <= R and deleted_rev
// NULL or > R.
//
// The audit log (audit.go) is written by the same transactions: the
// statement that takes the counter's lock also returns the commit time
// (never before the previous write's), a statement sent with it reads the
// chain's head (the newest entry's hash) once the lock is held, and the
// statement that records the revision stores the sealed entry; a
// background indexer adds its index terms later (audit_index.go). Servers
// sharing a database therefore chain their entries one after another. Garbage collection leaves the log alone; TrimAudit (or
// Config.AuditRetention) shortens it, and Config.DisableAudit turns it off.
//
// The package is named sql after its directory; it does not use
// database/sql, so the two never meet in one file of this package.
package sql
