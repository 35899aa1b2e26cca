package sql

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// watchBatch bounds how many revisions one poll reads.
const watchBatch = 256

// Watch yields every revision after `after`, in order, until ctx ends.
//
// It polls the revisions' records (revision records and audit entries)
// by revision number. Polling is complete
// because writers commit in revision order with no gaps (the counter lock):
// once revision R is visible, every revision below it is too, so a poll
// never skips a revision that commits later. Writes through this Engine
// wake the poll at once; others are seen within the poll interval.
func (e *Engine) Watch(ctx context.Context, after storage.Revision) iter.Seq2[storage.Change, error] {
	return func(yield func(storage.Change, error) bool) {
		if err := e.checkOpen(); err != nil {
			yield(storage.Change{}, err)
			return
		}
		head, floor, err := e.bounds(ctx, e.pool)
		if err == nil {
			err = checkReadable(after, head, floor)
		}
		if err != nil {
			yield(storage.Change{}, fmt.Errorf("watch after revision %d: %w", after, err))
			return
		}
		cursor := after
		for {
			wake := e.commitSignal() // taken before polling: no commit is missed
			changes, err := e.pollChanges(ctx, cursor)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				yield(storage.Change{}, fmt.Errorf("watch after revision %d: %w", cursor, err))
				return
			}
			for _, ch := range changes {
				if !yield(ch, nil) {
					return
				}
				cursor = ch.Revision
			}
			if len(changes) == watchBatch {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(e.pollInterval):
			}
			if e.closed.Load() {
				yield(storage.Change{}, storage.ErrClosed)
				return
			}
		}
	}
}

// pollChanges reads the revisions after cursor, up to watchBatch of them,
// with their relationship changes, in one consistent read-only snapshot.
// It fails with ErrRevisionTooOld if garbage collection has passed cursor.
func (e *Engine) pollChanges(ctx context.Context, cursor storage.Revision) ([]storage.Change, error) {
	var changes []storage.Change
	err := pgx.BeginTxFunc(ctx, e.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		changes = nil
		_, floor, err := e.bounds(ctx, tx)
		if err != nil {
			return err
		}
		if cursor < floor {
			return fmt.Errorf("%w (oldest readable revision is %d)", storage.ErrRevisionTooOld, floor)
		}
		rows, err := tx.Query(ctx, stmtWatchRevisions, int64(cursor), watchBatch)
		if err != nil {
			return err
		}
		changes, err = pgx.CollectRows(rows, scanRevisionRecord)
		if err != nil || len(changes) == 0 {
			return err
		}
		return addRelationshipChanges(ctx, tx, cursor, changes)
	})
	return changes, unavailable(err)
}

// scanRevisionRecord reads a row of stmtWatchRevisions: a revision
// record, or a revision's audit entry, which holds the same.
func scanRevisionRecord(row pgx.CollectableRow) (storage.Change, error) {
	var ch storage.Change
	var rev int64
	var actor, reason *string
	var labels []string
	var schemaChanged *bool
	var entry []byte
	if err := row.Scan(&rev, &ch.CommittedAt, &actor, &reason, &labels, &schemaChanged, &entry); err != nil {
		return ch, err
	}
	ch.Revision = storage.Revision(rev)
	if entry != nil {
		en, err := auditlog.DecodeHead(entry)
		if err != nil {
			return ch, fmt.Errorf("audit entry of revision %d: %w", rev, err)
		}
		ch.Metadata, ch.SchemaChanged = en.Metadata, en.Kind == storage.AuditSchema
		return ch, nil
	}
	if actor == nil || reason == nil || schemaChanged == nil {
		return ch, fmt.Errorf("revision record %d: a NULL column", rev)
	}
	ch.Metadata.Actor, ch.Metadata.Reason, ch.SchemaChanged = *actor, *reason, *schemaChanged
	var err error
	ch.Metadata.Labels, err = labelsFromColumn(labels)
	return ch, err
}

// addRelationshipChanges fills in the relationship changes of the
// revisions in changes, which follow cursor in order. A version created at
// R is a TOUCH at R; a version ended at R is a DELETE at R unless the same
// relationship got a new version at R (a TOUCH that replaced it).
func addRelationshipChanges(ctx context.Context, tx pgx.Tx, cursor storage.Revision, changes []storage.Change) error {
	last := changes[len(changes)-1].Revision
	rows, err := tx.Query(ctx, stmtWatchChanges, int64(cursor), int64(last))
	if err != nil {
		return err
	}
	defer rows.Close()
	type event struct {
		rev storage.Revision
		key graph.Key
	}
	touched := map[event]bool{}
	var deleted []storage.RelationshipChange
	var deletedAt []storage.Revision
	byRev := map[storage.Revision]*storage.Change{}
	for i := range changes {
		byRev[changes[i].Revision] = &changes[i]
	}
	for rows.Next() {
		var kind, at int64
		rel, err := scanRelationship(rows, &kind, &at)
		if err != nil {
			return err
		}
		rev := storage.Revision(at)
		if kind == 1 {
			ch := byRev[rev]
			ch.Relationships = append(ch.Relationships, storage.RelationshipChange{Op: storage.OpTouch, Relationship: rel})
			touched[event{rev, rel.Key()}] = true
			continue
		}
		deleted = append(deleted, storage.RelationshipChange{Op: storage.OpDelete, Relationship: rel})
		deletedAt = append(deletedAt, rev)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for i, d := range deleted {
		if touched[event{deletedAt[i], d.Relationship.Key()}] {
			continue
		}
		ch := byRev[deletedAt[i]]
		ch.Relationships = append(ch.Relationships, d)
	}
	for i := range changes {
		slices.SortFunc(changes[i].Relationships, func(a, b storage.RelationshipChange) int {
			return cmp.Or(a.Relationship.Key().CompareForward(b.Relationship.Key()), cmp.Compare(a.Op, b.Op))
		})
	}
	return nil
}
