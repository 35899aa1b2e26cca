package sql

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Write applies req atomically in one new revision: the preconditions are
// checked, CREATE conflicts detected and every mutation applied inside the
// same transaction, after it holds the revision counter's lock — in two
// round trips besides the counter update and the commit.
func (e *Engine) Write(ctx context.Context, req storage.WriteRequest) (storage.Revision, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	if err := validateWrite(req); err != nil {
		return 0, fmt.Errorf("write relationships: %w", err)
	}
	var rev storage.Revision
	err := e.inRevision(ctx, req.Metadata, false, func(tx pgx.Tx, r, schemaRev storage.Revision, final *pgx.Batch) error {
		rev = r
		if err := checkSchemaGuard(req.SchemaRevision, schemaRev); err != nil {
			return err
		}
		now := time.Now().UnixNano()
		if err := checkWrite(ctx, tx, req, now); err != nil {
			return err
		}
		return queueMutations(final, r, req.Mutations)
	})
	if err != nil {
		return 0, fmt.Errorf("write relationships: %w", err)
	}
	return rev, nil
}

// inRevision runs fn in a write transaction that has taken the next
// revision — and read, under the same lock, the revision of the newest
// schema version — and records that revision's metadata, retrying on serialization
// failures; it wakes local watchers after the commit. Statements fn
// queues in final go to the server in one round trip with the revision
// record, after fn returns: the fewer round trips while the counter lock
// is held, the more writes per second.
func (e *Engine) inRevision(ctx context.Context, meta storage.WriteMetadata, schemaChanged bool,
	fn func(tx pgx.Tx, rev, schemaRev storage.Revision, final *pgx.Batch) error) error {
	err := runWrite(ctx, e.dialect, e.pool, func(tx pgx.Tx) error {
		var rev, schemaRev int64
		if err := tx.QueryRow(ctx, stmtNextRevision).Scan(&rev, &schemaRev); err != nil {
			return fmt.Errorf("next revision: %w", err)
		}
		var final pgx.Batch
		if err := fn(tx, storage.Revision(rev), storage.Revision(schemaRev), &final); err != nil {
			return err
		}
		final.Queue(stmtInsertRevision, rev, meta.Actor, meta.Reason, schemaChanged)
		if e.dialect == PostgreSQL {
			final.Queue(pgNotifyRevision, strconv.FormatInt(rev, 10))
		}
		return tx.SendBatch(ctx, &final).Close()
	})
	if err == nil {
		e.notifyCommitted()
	}
	return err
}

// validateWrite checks every input before the transaction starts, so a bad
// one writes nothing.
func validateWrite(req storage.WriteRequest) error {
	for i, p := range req.Preconditions {
		if err := p.Filter.Validate(); err != nil {
			return fmt.Errorf("precondition %d: %w", i, err)
		}
	}
	seen := make(map[graph.Key]int, len(req.Mutations))
	for i, m := range req.Mutations {
		if m.Op < storage.OpCreate || m.Op > storage.OpDelete {
			return fmt.Errorf("%w: mutation %d: op: %v is not CREATE, TOUCH or DELETE", storage.ErrInvalidArgument, i, m.Op)
		}
		if err := storage.ValidateRelationship(m.Relationship); err != nil {
			return fmt.Errorf("mutation %d: %w", i, err)
		}
		k := m.Relationship.Key()
		if j, dup := seen[k]; dup {
			return fmt.Errorf("%w: mutation %d: relationship %s also appears in mutation %d",
				storage.ErrInvalidArgument, i, k, j)
		}
		seen[k] = i
	}
	return nil
}

// describeFilter renders a filter for error messages, e.g.
// `resource document:[1 2]#viewer, subject user:[alice]#...`.
func describeFilter(f storage.Filter) string {
	if f.IsEmpty() {
		return "any relationship"
	}
	s := "resource " + or(f.ResourceType, "*")
	if len(f.ResourceIDs) > 0 {
		s += fmt.Sprintf(":%v", f.ResourceIDs)
	}
	if f.Relation != "" {
		s += "#" + f.Relation
	}
	if sf := f.Subject; sf != nil {
		s += ", subject " + sf.Type
		if len(sf.IDs) > 0 {
			s += fmt.Sprintf(":%v", sf.IDs)
		}
		if sf.Relation != nil {
			s += "#" + or(*sf.Relation, graph.Ellipsis)
		}
	}
	return s
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// checkWrite checks, in one round trip, that every precondition holds
// (else ErrPreconditionFailed) and that no CREATE names a live, unexpired
// relationship (else *storage.AlreadyExistsError).
func checkWrite(ctx context.Context, tx pgx.Tx, req storage.WriteRequest, now int64) error {
	var batch pgx.Batch
	for _, p := range req.Preconditions {
		q := matchExistsQuery(p.Filter, now)
		batch.Queue(q.String(), q.args...)
	}
	var creates []graph.Relationship
	for _, m := range req.Mutations {
		if m.Op != storage.OpCreate {
			continue
		}
		k := forwardKey(m.Relationship)
		batch.Queue(stmtLiveExists, k[0], k[1], k[2], k[3], k[4], k[5], now)
		creates = append(creates, m.Relationship)
	}
	if batch.Len() == 0 {
		return nil
	}
	results := tx.SendBatch(ctx, &batch)
	defer results.Close()
	for i, p := range req.Preconditions {
		var exists bool
		if err := results.QueryRow().Scan(&exists); err != nil {
			return fmt.Errorf("precondition %d: %w", i, err)
		}
		if exists != p.MustMatch {
			want := "a match"
			if !p.MustMatch {
				want = "no match"
			}
			return fmt.Errorf("%w: precondition %d wants %s for %s", storage.ErrPreconditionFailed, i, want, describeFilter(p.Filter))
		}
	}
	for _, rel := range creates {
		var exists bool
		if err := results.QueryRow().Scan(&exists); err != nil {
			return err
		}
		if exists {
			return &storage.AlreadyExistsError{Relationship: rel}
		}
	}
	return results.Close()
}

// checkSchemaGuard fails with ErrSchemaChanged unless want is 0 or the
// revision of the newest schema version, newest.
func checkSchemaGuard(want, newest storage.Revision) error {
	if want != 0 && want != newest {
		return fmt.Errorf("%w: validated against the schema written at revision %d, the head has the one written at %d",
			storage.ErrSchemaChanged, want, newest)
	}
	return nil
}

// queueMutations queues the statements that end the live version of every
// mutated relationship and insert the new versions of CREATE and TOUCH.
func queueMutations(b *pgx.Batch, rev storage.Revision, ms []storage.Mutation) error {
	for _, m := range ms {
		k := forwardKey(m.Relationship)
		b.Queue(stmtEndVersion, int64(rev), k[0], k[1], k[2], k[3], k[4], k[5])
		if m.Op == storage.OpDelete {
			continue
		}
		args, err := relArgs(m.Relationship)
		if err != nil {
			return err
		}
		b.Queue(stmtInsertVersion, append(args, int64(rev))...)
	}
	return nil
}

// DeleteRelationships ends the live versions matching f in one revision,
// the first limit of them in forward order when limit > 0.
func (e *Engine) DeleteRelationships(ctx context.Context, f storage.Filter, limit int, meta storage.WriteMetadata) (storage.DeleteResult, error) {
	if err := e.checkOpen(); err != nil {
		return storage.DeleteResult{}, err
	}
	if err := f.Validate(); err != nil {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w", err)
	}
	if f.IsEmpty() {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w: filter: must not be empty", storage.ErrInvalidArgument)
	}
	if limit < 0 {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w: limit: %d is negative", storage.ErrInvalidArgument, limit)
	}
	var res storage.DeleteResult
	err := e.inRevision(ctx, meta, false, func(tx pgx.Tx, rev, _ storage.Revision, _ *pgx.Batch) error {
		res = storage.DeleteResult{Revision: rev}
		now := time.Now().UnixNano()
		q := deleteQuery(f, rev, now, limit)
		tag, err := tx.Exec(ctx, q.String(), q.args...)
		if err != nil {
			return err
		}
		res.Deleted = int(tag.RowsAffected())
		if limit > 0 && res.Deleted == limit {
			more := matchExistsQuery(f, now)
			return tx.QueryRow(ctx, more.String(), more.args...).Scan(&res.More)
		}
		return nil
	})
	if err != nil {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w", err)
	}
	return res, nil
}

// WriteSchema stores a new schema version in its own revision. w.Check
// runs inside the transaction, after it holds the revision counter's lock,
// reading through the transaction.
func (e *Engine) WriteSchema(ctx context.Context, w storage.SchemaWrite) (storage.Revision, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	s := w.Schema
	if s.Compiled == nil {
		s.Compiled = []byte{}
	}
	var rev storage.Revision
	err := e.inRevision(ctx, w.Metadata, true, func(tx pgx.Tx, r, _ storage.Revision, final *pgx.Batch) error {
		rev = r
		if w.Check != nil {
			if err := w.Check(ctx, &reader{e: e, db: tx, rev: r - 1}); err != nil {
				return err
			}
		}
		final.Queue(stmtInsertSchema, int64(r), s.Text, s.Compiled)
		final.Queue(stmtSetSchemaRevision, int64(r))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("write schema: %w", err)
	}
	return rev, nil
}
