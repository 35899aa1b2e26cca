package sql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
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
	entry := storage.AuditEntry{Kind: storage.AuditWrite, Metadata: req.Metadata}
	err := e.inRevision(ctx, entry, func(w *writeTx) error {
		rev = w.rev
		if err := checkSchemaGuard(req.SchemaRevision, w.schemaRev); err != nil {
			return err
		}
		if e.dialect == PostgreSQL && bulkCreate(req) {
			copied, err := copyCreates(ctx, w.tx, w.rev, req.Mutations)
			if err != nil || copied {
				if e.audit {
					w.changes = writeChanges(req.Mutations, nil)
				}
				return err
			}
		}
		now := time.Now().UnixNano()
		// With the audit log on, DELETEs run in the checks' round trip,
		// returning the versions they end: the audit entry, sealed before
		// the final round trip, records each one removed.
		removed, err := checkWrite(ctx, w.tx, req, now, w.rev, e.audit)
		if err != nil {
			return err
		}
		if e.audit {
			w.changes = writeChanges(req.Mutations, removed)
		}
		return queueMutations(&w.final, w.rev, req.Mutations, !e.audit)
	})
	if err != nil {
		return 0, fmt.Errorf("write relationships: %w", err)
	}
	return rev, nil
}

// bulkCreateMin is the number of CREATEs from which a write without
// preconditions or other operations (SpiceDB's bulk import) first tries
// to COPY them: three statements per relationship (an existence check,
// ending and inserting a version) become one COPY.
const bulkCreateMin = 64

// bulkCreate reports whether req is such a write.
func bulkCreate(req storage.WriteRequest) bool {
	if len(req.Preconditions) > 0 || len(req.Mutations) < bulkCreateMin {
		return false
	}
	for _, m := range req.Mutations {
		if m.Op != storage.OpCreate {
			return false
		}
	}
	return true
}

// copyCreates COPYs the relationships a bulk CREATE names (tryCopy). It
// reports false, having written nothing, when one meets a live version,
// even an expired one: the per-row statements then tell an existing
// relationship (AlreadyExists) from an expired one (replaced).
func copyCreates(ctx context.Context, tx pgx.Tx, rev storage.Revision, ms []storage.Mutation) (bool, error) {
	rows := make([][]any, len(ms))
	for i, m := range ms {
		args, err := relArgs(m.Relationship)
		if err != nil {
			return false, err
		}
		rows[i] = args
	}
	return tryCopy(ctx, tx, rev, rows)
}

// writeTx is a write transaction that holds the revision counter's lock.
type writeTx struct {
	tx  pgx.Tx
	rev storage.Revision
	// schemaRev is the revision of the newest schema version, as of the
	// lock.
	schemaRev storage.Revision
	// final is sent in one round trip with the revision record and the
	// audit entry, after the write's function returns.
	final pgx.Batch
	// changes are the relationship changes the write made, for its audit
	// entry.
	changes []storage.AuditChange
}

// inRevision runs fn in a write transaction that has taken the next
// revision — and read, under the same lock, the revision of the newest
// schema version, the audit chain's head and the commit time — then
// records the revision: by its audit entry, completed with the revision,
// commit time and chain head, or with the audit log off by a revision
// record of its metadata. Kind, Metadata and Schema come from the caller, and
// Changes too when they are known before the transaction (an import
// batch: the entry is then sealed while fn runs); otherwise fn sets
// w.changes. Failed attempts are retried on serialization failures;
// local watchers are woken after the commit. Statements fn queues in
// w.final go to the server in one round trip with the revision's record,
// after fn returns: the fewer round trips while the counter lock is held,
// the more writes per second.
func (e *Engine) inRevision(ctx context.Context, entry storage.AuditEntry, fn func(w *writeTx) error) error {
	var link *chainLink // the entry of the latest attempt, once sealed
	err := runWrite(ctx, e.dialect, e.pool, func(tx pgx.Tx) error {
		link = nil // an attempt before did not commit
		w := &writeTx{tx: tx}
		rev, schemaRev, committedAt, head, err := e.takeRevision(ctx, tx)
		if err != nil {
			return err
		}
		w.rev, w.schemaRev = storage.Revision(rev), storage.Revision(schemaRev)
		en := entry
		en.Revision, en.CommittedAt = w.rev, committedAt.UTC()
		var early func() sealed
		if e.audit && entry.Changes != nil {
			early = sealConcurrently(en, head)
		}
		err = fn(w)
		if early != nil {
			early() // the sealing reads the caller's changes: wait for it in any case
		}
		if err != nil {
			return err
		}
		if e.audit {
			var s sealed
			if early != nil {
				s = early()
			} else {
				en.Changes = w.changes
				s = sealEntry(en, head)
			}
			if s.err != nil {
				return s.err
			}
			w.final.Queue(stmtInsertAuditEntry, rev, committedAt, s.value, s.filter)
			link = &chainLink{rev: rev, hash: s.hash}
			e.lastEntry.Store(link)
		} else {
			meta := entry.Metadata
			w.final.Queue(stmtInsertRevision, rev, committedAt, meta.Actor, meta.Reason, labelsColumn(meta.Labels),
				entry.Kind == storage.AuditSchema)
		}
		if e.dialect == PostgreSQL {
			w.final.Queue(pgNotifyRevision, strconv.FormatInt(rev, 10))
		}
		return tx.SendBatch(ctx, &w.final).Close()
	})
	if err == nil {
		if link != nil {
			link.committed.Store(true)
		}
		e.notifyCommitted()
	}
	return err
}

// chainLink is an audit entry a write of this Engine sealed, published
// (Engine.lastEntry) while the write holds the counter's lock, before it
// commits: the next writer, which takes the lock once this write's
// transaction ends, may chain to it if it committed.
type chainLink struct {
	rev  int64
	hash storage.AuditHash
	// committed is set once the entry's transaction is known to have
	// committed; never when it failed or its outcome is unknown (a lost
	// connection).
	committed atomic.Bool
}

// takeRevision takes the next revision (stmtNextRevision), which holds
// the revision counter's lock until the transaction ends, and returns it
// with the newest schema version's revision and the commit time; with the
// audit log on, also the audit chain's head.
//
// The head is the hash of the newest committed entry. When the revision
// taken directly follows an entry this Engine sealed and committed, that
// entry is the newest: every revision commits with its entry (or, from a
// server with its log off, with a revision record, and then the numbers
// do not follow), a rolled-back write gives its number back, and the
// counter's lock orders the commits. The head is then known without
// reading it — the usual case on a single server, where this saves a
// statement under the lock on every write. Otherwise it is read
// (stmtAuditHead): after the counter update when the Engine's previous
// write found its own entry the newest, and in the same round trip as the
// update when it did not (servers writing in turn).
func (e *Engine) takeRevision(ctx context.Context, tx pgx.Tx) (rev, schemaRev int64, committedAt time.Time, head []byte, err error) {
	if !e.audit || e.lastEntry.Load() == nil || e.lastEntryMissed.Load() {
		if e.audit {
			e.headReads.Add(1)
		}
		rev, schemaRev, committedAt, head, err = takeRevision(ctx, tx, e.audit)
		if err == nil && e.audit && e.ownEntryPrecedes(rev) {
			e.lastEntryMissed.Store(false) // the next write may skip the read
		}
		return rev, schemaRev, committedAt, head, err
	}
	if err := tx.QueryRow(ctx, stmtNextRevision).Scan(&rev, &schemaRev, &committedAt); err != nil {
		return 0, 0, time.Time{}, nil, fmt.Errorf("next revision: %w", err)
	}
	// The write that held the lock before, if it was this Engine's, has
	// published its entry: it did so holding the lock.
	if e.ownEntryPrecedes(rev) {
		last := e.lastEntry.Load()
		return rev, schemaRev, committedAt, last.hash[:], nil
	}
	e.lastEntryMissed.Store(true)
	e.headReads.Add(1)
	if err := tx.QueryRow(ctx, stmtAuditHead).Scan(&head); err != nil {
		return 0, 0, time.Time{}, nil, fmt.Errorf("audit chain head: %w", err)
	}
	return rev, schemaRev, committedAt, head, nil
}

// ownEntryPrecedes reports whether revision rev-1 committed with the
// entry this Engine published last (Engine.lastEntry). It does not wait:
// when the write before has not yet learned that it committed (its reply
// is on its way), the head is read instead, which costs a statement, not
// a wait while holding the counter's lock.
func (e *Engine) ownEntryPrecedes(rev int64) bool {
	last := e.lastEntry.Load()
	return last != nil && last.rev == rev-1 && last.committed.Load()
}

// takeRevision takes the next revision and, with audit set, reads the
// audit chain's head after the counter's lock is held, in the same round
// trip.
func takeRevision(ctx context.Context, tx pgx.Tx, audit bool) (rev, schemaRev int64, committedAt time.Time, head []byte, err error) {
	if !audit {
		if err := tx.QueryRow(ctx, stmtNextRevision).Scan(&rev, &schemaRev, &committedAt); err != nil {
			return 0, 0, time.Time{}, nil, fmt.Errorf("next revision: %w", err)
		}
		return rev, schemaRev, committedAt, nil, nil
	}
	var b pgx.Batch
	b.Queue(stmtNextRevision).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&rev, &schemaRev, &committedAt); err != nil {
			return fmt.Errorf("next revision: %w", err)
		}
		return nil
	})
	b.Queue(stmtAuditHead).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&head); err != nil {
			return fmt.Errorf("audit chain head: %w", err)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return 0, 0, time.Time{}, nil, err
	}
	return rev, schemaRev, committedAt, head, nil
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
	if f.ResourceIDPrefix != "" {
		s += ":" + f.ResourceIDPrefix + "*"
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
// relationship (else *storage.AlreadyExistsError). With remove set, the
// same round trip also ends the live versions the DELETEs name, at rev,
// and checkWrite returns the unexpired ones, by mutation index.
func checkWrite(ctx context.Context, tx pgx.Tx, req storage.WriteRequest, now int64, rev storage.Revision,
	remove bool) (removed map[int]graph.Relationship, err error) {
	var batch pgx.Batch
	for _, p := range req.Preconditions {
		q := matchExistsQuery(p.Filter, now)
		batch.Queue(q.String(), q.args...)
	}
	// Results are read back in the order queued: preconditions, then
	// CREATEs, then DELETEs.
	var creates, deletes []int
	for i, m := range req.Mutations {
		switch {
		case m.Op == storage.OpCreate:
			creates = append(creates, i)
		case m.Op == storage.OpDelete && remove:
			deletes = append(deletes, i)
		}
	}
	for _, i := range creates {
		k := forwardKey(req.Mutations[i].Relationship)
		batch.Queue(stmtLiveExists, k[0], k[1], k[2], k[3], k[4], k[5], now)
	}
	for _, i := range deletes {
		k := forwardKey(req.Mutations[i].Relationship)
		batch.Queue(stmtRemoveVersion, int64(rev), k[0], k[1], k[2], k[3], k[4], k[5])
	}
	if batch.Len() == 0 {
		return nil, nil
	}
	results := tx.SendBatch(ctx, &batch)
	defer results.Close()
	for i, p := range req.Preconditions {
		var exists bool
		if err := results.QueryRow().Scan(&exists); err != nil {
			return nil, fmt.Errorf("precondition %d: %w", i, err)
		}
		if exists != p.MustMatch {
			want := "a match"
			if !p.MustMatch {
				want = "no match"
			}
			return nil, fmt.Errorf("%w: precondition %d wants %s for %s", storage.ErrPreconditionFailed, i, want, describeFilter(p.Filter))
		}
	}
	for _, i := range creates {
		var exists bool
		if err := results.QueryRow().Scan(&exists); err != nil {
			return nil, err
		}
		if exists {
			return nil, &storage.AlreadyExistsError{Relationship: req.Mutations[i].Relationship}
		}
	}
	for _, i := range deletes {
		old, err := scanRelationship(results.QueryRow())
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // absent: nothing to record
		case err != nil:
			return nil, fmt.Errorf("mutation %d: %w", i, err)
		}
		if old.Expiration != nil && old.Expiration.UnixNano() <= now {
			continue // expired: it counted as absent already
		}
		if removed == nil {
			removed = make(map[int]graph.Relationship, len(deletes))
		}
		removed[i] = old
	}
	return removed, results.Close()
}

// writeChanges lists the changes a write's mutations made, in their
// order: every CREATE and TOUCH, and the DELETEs that removed a live
// relationship, carrying the version removed.
func writeChanges(ms []storage.Mutation, removed map[int]graph.Relationship) []storage.AuditChange {
	changes := make([]storage.AuditChange, 0, len(ms))
	for i, m := range ms {
		if m.Op != storage.OpDelete {
			changes = append(changes, storage.AuditChange{Op: m.Op, Relationship: m.Relationship})
		} else if old, ok := removed[i]; ok {
			changes = append(changes, storage.AuditChange{Op: storage.OpDelete, Relationship: old})
		}
	}
	return changes
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
// mutated relationship — but a DELETE's only with deletes set — and
// insert the new versions of CREATE and TOUCH.
func queueMutations(b *pgx.Batch, rev storage.Revision, ms []storage.Mutation, deletes bool) error {
	for _, m := range ms {
		if m.Op == storage.OpDelete && !deletes {
			continue
		}
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
	entry := storage.AuditEntry{Kind: storage.AuditDelete, Metadata: meta}
	err := e.inRevision(ctx, entry, func(w *writeTx) error {
		res = storage.DeleteResult{Revision: w.rev}
		now := time.Now().UnixNano()
		n, err := e.deleteMatches(ctx, w, deleteQuery(f, w.rev, now, limit, e.audit))
		if err != nil {
			return err
		}
		res.Deleted = n
		if limit > 0 && res.Deleted == limit {
			more := matchExistsQuery(f, now)
			return w.tx.QueryRow(ctx, more.String(), more.args...).Scan(&res.More)
		}
		return nil
	})
	if err != nil {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w", err)
	}
	return res, nil
}

// deleteMatches runs a filtered delete and reports how many versions it
// ended. With the audit log on, q returns them, and they become w's
// changes in forward-query order.
func (e *Engine) deleteMatches(ctx context.Context, w *writeTx, q *query) (int, error) {
	if !e.audit {
		tag, err := w.tx.Exec(ctx, q.String(), q.args...)
		return int(tag.RowsAffected()), err
	}
	rels, err := queryRelationships(ctx, w.tx, q)
	if err != nil {
		return 0, err
	}
	slices.SortFunc(rels, graph.CompareForward)
	w.changes = make([]storage.AuditChange, len(rels))
	for i, r := range rels {
		w.changes[i] = storage.AuditChange{Op: storage.OpDelete, Relationship: r}
	}
	return len(rels), nil
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
	entry := storage.AuditEntry{Kind: storage.AuditSchema, Metadata: w.Metadata, Schema: w.Diff}
	err := e.inRevision(ctx, entry, func(tx *writeTx) error {
		rev = tx.rev
		if w.Check != nil {
			if err := w.Check(ctx, &reader{e: e, db: tx.tx, rev: tx.rev - 1}); err != nil {
				return err
			}
		}
		tx.final.Queue(stmtInsertSchema, int64(tx.rev), s.Text, s.Compiled)
		tx.final.Queue(stmtSetSchemaRevision, int64(tx.rev))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("write schema: %w", err)
	}
	return rev, nil
}
