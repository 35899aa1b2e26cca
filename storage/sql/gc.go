package sql

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CollectGarbage raises the GC floor to the revision in force at
// now - GCWindow (the newest revision committed at or before it), then
// deletes what no revision at or above the floor can see: relationship
// versions ended at or below it, versions that expired before the window
// began (invisible to every read at the current time), older revision
// records, and schema versions superseded at the floor. It never touches
// the audit log, except that with Config.AuditRetention set it trims the
// entries older than the retention (TrimAudit).
//
// The floor moves first, in its own short transaction under the counter
// lock so it never races a write; readers check it before reading, so the
// deletions that follow are never observed.
func (e *Engine) CollectGarbage(ctx context.Context, now time.Time) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	cutoff := now.Add(-e.gcWindow)
	var floor int64
	err := runWrite(ctx, e.dialect, e.pool, func(tx pgx.Tx) error {
		var head int64
		if err := tx.QueryRow(ctx, stmtGCLock).Scan(&head); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, stmtGCFloorCandidate, cutoff).Scan(&floor); err != nil {
			return err
		}
		if floor == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, stmtRaiseGCFloor, floor)
		return err
	})
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	_, current, err := e.bounds(ctx, e.pool)
	if err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	if err := e.deleteInBatches(ctx, stmtGCVersions, int64(current)); err != nil {
		return fmt.Errorf("collect garbage below revision %d: %w", current, err)
	}
	if err := e.deleteInBatches(ctx, stmtGCExpired, cutoff.UnixNano()); err != nil {
		return fmt.Errorf("collect relationships expired before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	for _, stmt := range []string{stmtGCRevisions, stmtGCSchemas} {
		if _, err := e.pool.Exec(ctx, stmt, int64(current)); err != nil {
			return fmt.Errorf("collect garbage below revision %d: %w", current, err)
		}
	}
	if e.auditRetention > 0 {
		if _, err := e.TrimAudit(ctx, now.Add(-e.auditRetention)); err != nil {
			return fmt.Errorf("collect garbage: %w", err)
		}
	}
	return nil
}

// gcBatch is how many rows one garbage-collection statement deletes.
const gcBatch = 10_000

// deleteInBatches runs stmt(arg, gcBatch) until it deletes fewer rows than
// a full batch.
func (e *Engine) deleteInBatches(ctx context.Context, stmt string, arg int64) error {
	for {
		tag, err := e.pool.Exec(ctx, stmt, arg, gcBatch)
		if err != nil {
			return err
		}
		if tag.RowsAffected() < gcBatch {
			return nil
		}
	}
}
