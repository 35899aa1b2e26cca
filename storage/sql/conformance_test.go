package sql

import (
	"context"
	"testing"

	"github.com/pembadb/pemba/internal/pgtest"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/storagetest"
)

func TestConformancePostgreSQL(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine { return openTest(t) }, storagetest.WithTamper(tamperAuditEntry))
}

// TestConformanceUnindexedAuditPostgreSQL runs the audit subtests with
// the audit indexer stopped: term queries answer from the entries alone
// until the suite calls IndexAudit.
func TestConformanceUnindexedAuditPostgreSQL(t *testing.T) {
	storagetest.RunAudit(t, func(t *testing.T) storage.Engine {
		return openTestConfig(t, Config{noAuditIndexer: true})
	}, storagetest.WithTamper(tamperAuditEntry))
}

// TestConformanceCockroachDB runs the suite on the CockroachDB cluster
// PEMBA_TEST_COCKROACH_URL names, with the CockroachDB dialect; it skips
// when the variable is unset.
func TestConformanceCockroachDB(t *testing.T) {
	pgtest.SkipUnlessCockroach(t)
	storagetest.Run(t, func(t *testing.T) storage.Engine { return openCockroach(t, Config{}) }, storagetest.WithTamper(tamperAuditEntry))
}

// TestConformanceUnindexedAuditCockroachDB is
// TestConformanceUnindexedAuditPostgreSQL on CockroachDB.
func TestConformanceUnindexedAuditCockroachDB(t *testing.T) {
	pgtest.SkipUnlessCockroach(t)
	storagetest.RunAudit(t, func(t *testing.T) storage.Engine {
		return openCockroach(t, Config{noAuditIndexer: true})
	}, storagetest.WithTamper(tamperAuditEntry))
}

// tamperAuditEntry rewrites a stored audit entry behind the engine's
// back, as anyone who can write the database could.
func tamperAuditEntry(t *testing.T, se storage.Engine, rev storage.Revision, edit func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	e := se.(*Engine)
	var value []byte
	if err := e.pool.QueryRow(ctx, "SELECT value FROM audit_entries WHERE revision = $1", int64(rev)).Scan(&value); err != nil {
		t.Fatalf("tamper with the audit entry of revision %d: %v", rev, err)
	}
	tag, err := e.pool.Exec(ctx, "UPDATE audit_entries SET value = $1 WHERE revision = $2", edit(value), int64(rev))
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper with the audit entry of revision %d: %v (%d rows)", rev, err, tag.RowsAffected())
	}
}
