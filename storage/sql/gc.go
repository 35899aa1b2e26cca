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
// versions ended at or below it, older revision records, and schema
// versions superseded at the floor.
//
// The floor moves first, in its own short transaction under the counter
// lock so it never races a write; readers check it before reading, so the
// deletions that follow are never observed.
func (e *Engine) CollectGarbage(ctx context.Context, now time.Time) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	var floor int64
	err := runWrite(ctx, e.dialect, e.pool, func(tx pgx.Tx) error {
		var head int64
		if err := tx.QueryRow(ctx, stmtGCLock).Scan(&head); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, stmtGCFloorCandidate, now.Add(-e.gcWindow)).Scan(&floor); err != nil {
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
	for _, stmt := range []string{stmtGCVersions, stmtGCRevisions, stmtGCSchemas} {
		if _, err := e.pool.Exec(ctx, stmt, int64(current)); err != nil {
			return fmt.Errorf("collect garbage below revision %d: %w", current, err)
		}
	}
	return nil
}
