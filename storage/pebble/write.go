package pebble

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// DefaultImportBatch is the batch size Import uses when given 0.
const DefaultImportBatch = 1000

// encoded is a mutation prepared outside the write lock: both key bodies
// (without revision suffix) and the payload, as offsets into one buffer.
type encoded struct {
	op                 storage.Op
	rel                *graph.Relationship
	fwd, rev, pay, end int // buf[fwd:rev] forward body, [rev:pay] reverse body, [pay:end] payload
}

type encodedSet struct {
	buf  []byte
	muts []encoded
}

func (s *encodedSet) add(op storage.Op, r *graph.Relationship) error {
	if err := storage.ValidateRelationship(*r); err != nil {
		return err
	}
	var ctxJSON []byte
	if r.Caveat != nil {
		var err error
		if ctxJSON, err = storage.EncodeCaveatContext(r.Caveat.Context); err != nil {
			return err
		}
	}
	m := encoded{op: op, rel: r, fwd: len(s.buf)}
	s.buf = forward.appendBody(s.buf, r)
	m.rev = len(s.buf)
	s.buf = reverse.appendBody(s.buf, r)
	m.pay = len(s.buf)
	s.buf = appendPayload(s.buf, r, ctxJSON)
	m.end = len(s.buf)
	s.muts = append(s.muts, m)
	return nil
}

func (s *encodedSet) reset() {
	s.buf = s.buf[:0]
	s.muts = s.muts[:0]
}

func (s *encodedSet) parts(m *encoded) (fwd, rev, pay []byte) {
	return s.buf[m.fwd:m.rev], s.buf[m.rev:m.pay], s.buf[m.pay:m.end]
}

// Write applies req atomically in a new revision if every precondition holds.
func (e *Engine) Write(ctx context.Context, req storage.WriteRequest) (storage.Revision, error) {
	rev, err := e.write(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("write relationships: %w", err)
	}
	return rev, nil
}

func (e *Engine) write(ctx context.Context, req storage.WriteRequest) (storage.Revision, error) {
	for i, p := range req.Preconditions {
		if err := p.Filter.Validate(); err != nil {
			return 0, fmt.Errorf("precondition %d: %w", i, err)
		}
	}
	var set encodedSet
	seen := make(map[string]int, len(req.Mutations))
	deletes := false
	for i := range req.Mutations {
		m := &req.Mutations[i]
		if m.Op != storage.OpCreate && m.Op != storage.OpTouch && m.Op != storage.OpDelete {
			return 0, fmt.Errorf("mutation %d: %w: unknown operation %v", i, storage.ErrInvalidArgument, m.Op)
		}
		if err := set.add(m.Op, &m.Relationship); err != nil {
			return 0, fmt.Errorf("mutation %d: %w", i, err)
		}
		fwd, _, _ := set.parts(&set.muts[i])
		if j, dup := seen[string(fwd)]; dup {
			return 0, fmt.Errorf("mutation %d: %w: relationship also changed by mutation %d", i, storage.ErrInvalidArgument, j)
		}
		seen[string(fwd)] = i
		deletes = deletes || m.Op == storage.OpDelete
	}
	prepared := commit{audit: e.auditBuilder(storage.AuditWrite, req.Metadata, nil)}
	defer releaseBuilder(prepared.audit)
	if prepared.audit != nil && !deletes {
		// Without deletes, the write changes exactly what it lists if it
		// commits: its audit entry is complete before the lock.
		for i := range set.muts {
			m := &set.muts[i]
			_, _, pay := set.parts(m)
			if err := auditAdd(prepared.audit, m.op, m.rel, pay); err != nil {
				return 0, fmt.Errorf("mutation %d: %w", i, err)
			}
		}
		prepared.auditFilter, prepared.auditFiltered, prepared.auditBuilt = prepared.audit.Filter(), true, true
		prepared.auditTerms = prepared.audit.Terms() // before the lock, for the indexer
	}

	release, err := e.use()
	if err != nil {
		return 0, err
	}
	defer release()
	return e.serialize(ctx, prepared, func(c *commit) error {
		return e.applyWrite(ctx, c, &req, &set)
	})
}

// applyWrite checks req against the store as of the last applied revision
// and fills c. The caller holds writeMu.
func (e *Engine) applyWrite(ctx context.Context, c *commit, req *storage.WriteRequest, set *encodedSet) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.checkSchemaGuard(req.SchemaRevision); err != nil {
		return err
	}
	now := time.Now()
	c.now, c.meta = now, req.Metadata
	for i, p := range req.Preconditions {
		found, err := e.anyMatch(ctx, e.applied, &p.Filter, now)
		if err != nil {
			return fmt.Errorf("precondition %d: %w", i, err)
		}
		if found != p.MustMatch {
			want := "match"
			if !p.MustMatch {
				want = "not match"
			}
			return fmt.Errorf("precondition %d: relationships must %s %s: %w", i, want, describeFilter(&p.Filter), storage.ErrPreconditionFailed)
		}
	}

	it, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{LowerBound: []byte{spaceForward}, UpperBound: []byte{spaceForward + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for i := range set.muts {
		m := &set.muts[i]
		fwd, rv, pay := set.parts(m)
		switch m.op {
		case storage.OpCreate:
			if cur, ok := newest(it, fwd); ok && !cur.tombstone && !cur.expiredAt(now) {
				return &storage.AlreadyExistsError{Relationship: *m.rel}
			}
			c.put(fwd, rv, pay)
			if err := c.audited(storage.OpCreate, m.rel, pay); err != nil {
				return fmt.Errorf("mutation %d: %w", i, err)
			}
		case storage.OpTouch:
			c.put(fwd, rv, pay)
			if err := c.audited(storage.OpTouch, m.rel, pay); err != nil {
				return fmt.Errorf("mutation %d: %w", i, err)
			}
		case storage.OpDelete:
			cur, ok := newest(it, fwd)
			if !ok || cur.tombstone {
				continue
			}
			c.remove(fwd, rv, it.Value())
			if !cur.expiredAt(now) { // an expired relationship was absent already
				if err := c.auditedDelete(m.rel, &cur); err != nil {
					return fmt.Errorf("mutation %d: %w", i, err)
				}
			}
		}
	}
	return it.Error()
}

// describeFilter renders a filter for error messages, e.g.
// `document:[1 2]#viewer@user:[alice]#...`; `*` stands for any.
func describeFilter(f *storage.Filter) string {
	orAny := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	ids := func(ids []string) string {
		if len(ids) == 0 {
			return "*"
		}
		return fmt.Sprint(ids)
	}
	resourceIDs := ids(f.ResourceIDs)
	if f.ResourceIDPrefix != "" {
		resourceIDs = f.ResourceIDPrefix + "*"
	}
	out := orAny(f.ResourceType) + ":" + resourceIDs + "#" + orAny(f.Relation)
	if s := f.Subject; s != nil {
		out += "@" + s.Type + ":" + ids(s.IDs)
		if s.Relation != nil {
			rel := *s.Relation
			if rel == "" {
				rel = "..."
			}
			out += "#" + rel
		}
	}
	return out
}

// newest positions it on the newest version of body and decodes it.
func newest(it *pdb.Iterator, body []byte) (payload, bool) {
	if !it.SeekGE(body) {
		return payload{}, false
	}
	k := it.Key()
	if len(k) != len(body)+suffixLen || !bytes.HasPrefix(k, body) {
		return payload{}, false
	}
	p, err := decodePayload(it.Value())
	if err != nil {
		return payload{}, false
	}
	return p, true
}

// anyMatch reports whether a relationship matching f is live at rev.
func (e *Engine) anyMatch(ctx context.Context, rev storage.Revision, f *storage.Filter, now time.Time) (bool, error) {
	p := newPlan().forward(f)
	defer p.release()
	found := false
	err := e.scan(ctx, rev, false, p, storage.QueryOptions{Limit: 1, Now: now}, func([]byte, *[6][]byte, []byte, *payload) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}

// commit is one revision being assembled under writeMu.
type commit struct {
	e     *Engine
	rev   storage.Revision
	batch *pdb.Batch
	log   changeLog
	key   []byte
	// Recorded in the revision record.
	now           time.Time
	meta          storage.WriteMetadata
	schemaChanged bool
	// audit encodes the revision's audit entry — its kind, metadata,
	// schema diff and effective changes in the order the write listed
	// them — as the write proceeds (an import batch's before the lock);
	// nil when the audit log is disabled. auditBuilt says every change
	// was added before the lock; auditFiltered says auditFilter, the
	// object filter of an import entry (nil for others), was computed
	// then too.
	audit         *auditlog.Builder
	auditBuilt    bool
	auditFiltered bool
	auditFilter   []byte
	// auditTerms are the entry's index terms when they were computed
	// before the lock: handed to the indexer once the batch is applied,
	// so it need not read and decode the entry again.
	auditTerms []string
}

// serialize runs build holding writeMu with a commit for the next
// revision and, if build succeeds, applies the batch before releasing the
// lock: the next writer sees it, so writers are serial. Waiting for the
// lock ends with ctx, and ctx is checked again once it is held, so a
// write whose caller has given up is never applied. The WAL sync happens
// after the lock is released, so concurrent writers share syncs (Pebble
// groups them); the head is published only once the revision is durable.
//
// prepared is the commit's state built before the lock: the audit entry
// under way, and for a large write the batch, sized for all of it so it
// does not grow by copying (nil: a fresh batch).
func (e *Engine) serialize(ctx context.Context, prepared commit, build func(c *commit) error) (storage.Revision, error) {
	select {
	case e.writeMu <- struct{}{}:
	case <-ctx.Done():
		if prepared.batch != nil {
			prepared.batch.Close()
		}
		return 0, fmt.Errorf("wait for the write lock: %w", ctx.Err())
	}
	c := &prepared
	c.e, c.now = e, time.Now()
	if c.batch == nil {
		c.batch = e.db.NewBatch()
	}
	defer c.batch.Close()
	c.rev = e.applied + 1
	err := ctx.Err()
	if err == nil {
		err = build(c)
	}
	if err == nil {
		err = c.apply()
	}
	if err == nil && c.auditTerms != nil {
		e.handed.put(c.rev, c.auditTerms, &e.auditIndexed)
	}
	<-e.writeMu
	if err != nil {
		return 0, err
	}
	return c.rev, c.publish()
}

// checkSchemaGuard fails with ErrSchemaChanged unless want is 0 or the
// revision of the newest schema version. The caller holds writeMu.
func (e *Engine) checkSchemaGuard(want storage.Revision) error {
	if want != 0 && want != e.schemaRev {
		return fmt.Errorf("%w: validated against the schema written at revision %d, the head has the one written at %d",
			storage.ErrSchemaChanged, want, e.schemaRev)
	}
	return nil
}

func (c *commit) set(body, value []byte) {
	c.key = appendDescRevision(append(c.key[:0], body...), c.rev)
	_ = c.batch.Set(c.key, value, nil) // a batch Set fails only on a closed batch
}

// setForward writes a forward-index version and, when it expires, its
// expiration-index entry, so GC can find it once it has long expired.
func (c *commit) setForward(fwd, pay []byte) {
	c.set(fwd, pay)
	if len(pay) >= 13 && pay[0]&flagExpiration != 0 {
		c.key = expirationKey(c.key[:0], pay[1:13], fwd, c.rev)
		_ = c.batch.Set(c.key, nil, nil)
	}
}

// put writes a live version to both indexes.
func (c *commit) put(fwd, rev, pay []byte) {
	c.setForward(fwd, pay)
	c.set(rev, pay)
	c.log.add(storage.OpTouch, fwd, pay)
}

// remove writes tombstones to both indexes; old is the version deleted,
// kept in the change log so watchers see what went.
func (c *commit) remove(fwd, rev, old []byte) {
	c.set(fwd, tombstone)
	c.set(rev, tombstone)
	c.log.add(storage.OpDelete, fwd, old)
}

// apply adds the revision's record — its audit entry, or its revision
// record and change log (see recordedByAudit) — and applies the batch,
// unsynced; the caller holds writeMu.
func (c *commit) apply() error {
	e := c.e
	if c.now.Before(e.lastCommit) {
		c.now = e.lastCommit // commit times never go back
	}
	c.meta.Labels = sortedLabels(c.meta.Labels)
	if !c.recordedByAudit() {
		rr := revisionRecord{committedAt: c.now, meta: c.meta, schemaChanged: c.schemaChanged}
		_ = c.batch.Set(revisionKey(spaceRevision, c.rev), rr.encode(), nil)
		_ = c.batch.Set(revisionKey(spaceChanges, c.rev), c.log.encode(), nil)
	}
	auditHead := e.auditHead
	if c.audit != nil {
		auditHead = c.addAuditEntry()
	}
	if err := c.batch.Commit(pdb.NoSync); err != nil {
		return fmt.Errorf("commit revision %d: %w", c.rev, err)
	}
	e.applied = c.rev
	e.lastCommit = c.now
	e.auditHead = auditHead
	if c.schemaChanged {
		e.schemaRev = c.rev
	}
	return nil
}

// recordedByAudit reports whether the revision's audit entry is its only
// record. The entry holds everything its revision record and change log
// would — commit time, metadata, whether the schema changed (an
// AuditSchema entry), each change with its caveat and expiration — so
// with the audit log on they are written only when the entry leaves a
// change out: a DELETE of a relationship that had already expired, which
// changed nothing visible but left a tombstone garbage collection must
// find. Watch (readChange) and garbage collection read either form.
func (c *commit) recordedByAudit() bool {
	return c.audit != nil && c.audit.Changes() == c.log.n
}

// syncMarker is the WAL record whose synced write makes every earlier
// record durable.
var syncMarker = []byte{'s'}

// publish waits until the revision is durable, then makes it the head
// (unless a later one already is: the WAL is sequential, so a later
// revision's sync covered this one) and wakes watchers.
func (c *commit) publish() error {
	e := c.e
	if e.writeOpt.Sync {
		if err := e.db.LogData(syncMarker, pdb.Sync); err != nil {
			return fmt.Errorf("sync revision %d: %w", c.rev, err)
		}
	}
	for {
		h := e.head.Load()
		if h >= uint64(c.rev) || e.head.CompareAndSwap(h, uint64(c.rev)) {
			break
		}
	}
	e.wakeWatchers()
	return nil
}

// DeleteRelationships deletes up to limit live matches of f in one revision.
func (e *Engine) DeleteRelationships(ctx context.Context, f storage.Filter, limit int, meta storage.WriteMetadata) (storage.DeleteResult, error) {
	res, err := e.deleteRelationships(ctx, f, limit, meta)
	if err != nil {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w", err)
	}
	return res, nil
}

func (e *Engine) deleteRelationships(ctx context.Context, f storage.Filter, limit int, meta storage.WriteMetadata) (storage.DeleteResult, error) {
	if err := f.Validate(); err != nil {
		return storage.DeleteResult{}, err
	}
	if f.IsEmpty() {
		return storage.DeleteResult{}, fmt.Errorf("%w: filter: empty (it would delete everything)", storage.ErrInvalidArgument)
	}
	if limit < 0 {
		return storage.DeleteResult{}, fmt.Errorf("%w: limit: %d is negative", storage.ErrInvalidArgument, limit)
	}
	release, err := e.use()
	if err != nil {
		return storage.DeleteResult{}, err
	}
	defer release()
	p := newPlan().forward(&f)
	defer p.release()
	var res storage.DeleteResult
	audit := e.auditBuilder(storage.AuditDelete, meta, nil)
	defer releaseBuilder(audit)
	res.Revision, err = e.serialize(ctx, commit{audit: audit}, func(c *commit) error {
		c.meta = meta
		opts := storage.QueryOptions{Now: c.now}
		if limit > 0 {
			opts.Limit = limit + 1 // one more tells whether there is more
		}
		var rv []byte
		return e.scan(ctx, e.applied, false, p, opts, func(body []byte, comps *[6][]byte, value []byte, pl *payload) (bool, error) {
			if limit > 0 && res.Deleted == limit {
				res.More = true
				return false, nil
			}
			rv = reverseBody(rv[:0], comps)
			c.remove(body, rv, value)
			res.Deleted++
			if c.audit != nil {
				r := forward.relationship(body, comps)
				if err := c.auditedDelete(&r, pl); err != nil {
					return false, fmt.Errorf("value of %q: %w", body, err)
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return storage.DeleteResult{}, err
	}
	return res, nil
}

// reverseBody builds the reverse-index body from forward components.
func reverseBody(dst []byte, comps *[6][]byte) []byte {
	dst = append(dst, spaceReverse)
	for _, i := range [6]int{3, 4, 5, 0, 1, 2} {
		dst = appendComponent(dst, string(comps[i]))
	}
	return dst
}

// WriteSchema stores a schema version in its own revision. w.Check runs
// holding writeMu, reading the last applied revision.
func (e *Engine) WriteSchema(ctx context.Context, w storage.SchemaWrite) (storage.Revision, error) {
	release, err := e.use()
	if err != nil {
		return 0, err
	}
	defer release()
	value := encodeSchema(w.Schema)
	audit := e.auditBuilder(storage.AuditSchema, w.Metadata, w.Diff)
	defer releaseBuilder(audit)
	rev, err := e.serialize(ctx, commit{audit: audit}, func(c *commit) error {
		if w.Check != nil {
			if err := w.Check(ctx, &reader{e: e, rev: e.applied, writing: true}); err != nil {
				return err
			}
		}
		c.meta, c.schemaChanged = w.Metadata, true
		return c.batch.Set(schemaKey(c.rev), value, nil)
	})
	if err != nil {
		return 0, fmt.Errorf("write schema: %w", err)
	}
	return rev, nil
}

// Import writes rels with TOUCH semantics, one revision per batch. Each
// batch is validated and encoded before the write lock is taken, so a slow
// source does not hold up other writers.
func (e *Engine) Import(ctx context.Context, rels iter.Seq2[graph.Relationship, error], opts storage.ImportOptions) (storage.ImportResult, error) {
	var res storage.ImportResult
	batchSize := opts.BatchSize
	if batchSize < 0 {
		return res, fmt.Errorf("import relationships: %w: batch size %d is negative", storage.ErrInvalidArgument, batchSize)
	}
	if batchSize == 0 {
		batchSize = DefaultImportBatch
	}
	var set encodedSet
	// One audit entry per batch, encoded as the batch is read.
	audit := e.auditBuilder(storage.AuditImport, opts.Metadata, nil)
	// Relationships are copied: add keeps a pointer for error reports.
	batch := make([]graph.Relationship, 0, min(batchSize, 1<<16))
	flush := func() error {
		if len(set.muts) == 0 {
			return nil
		}
		rev, err := e.importBatch(ctx, &set, audit, opts)
		if err != nil {
			return err
		}
		res.Imported += len(set.muts)
		res.Revisions = append(res.Revisions, rev)
		set.reset()
		batch = batch[:0]
		if audit != nil {
			audit.Reset(storage.AuditImport, opts.Metadata, nil)
		}
		return nil
	}
	n := 0
	for r, err := range rels {
		if err != nil {
			return res, fmt.Errorf("import relationships: source after %d: %w", n, err)
		}
		batch = append(batch, r)
		if err := set.add(storage.OpTouch, &batch[len(batch)-1]); err != nil {
			return res, fmt.Errorf("import relationships: relationship %d: %w", n, err)
		}
		if audit != nil {
			_, _, pay := set.parts(&set.muts[len(set.muts)-1])
			if err := auditAdd(audit, storage.OpTouch, &batch[len(batch)-1], pay); err != nil {
				return res, fmt.Errorf("import relationships: relationship %d: %w", n, err)
			}
		}
		n++
		if len(set.muts) >= batchSize {
			if err := flush(); err != nil {
				return res, fmt.Errorf("import relationships: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("import relationships: %w", err)
	}
	return res, nil
}

func (e *Engine) importBatch(ctx context.Context, set *encodedSet, audit *auditlog.Builder, opts storage.ImportOptions) (storage.Revision, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	release, err := e.use()
	if err != nil {
		return 0, err
	}
	defer release()
	// Sort each index's keys before taking the lock: Pebble inserts a
	// batch into its memtable skiplist in batch order, and sorted inserts
	// reuse the previous insert's position instead of searching from the
	// top, which more than pays for the sort on large batches.
	byFwd, byRev := set.sortedOrders()
	prepared := commit{audit: audit, auditBuilt: true}
	size := 2*len(set.buf) + 32*len(set.muts) + 1024
	if audit != nil {
		prepared.auditFilter, prepared.auditFiltered = audit.Filter(), true
		size += audit.Len() + len(prepared.auditFilter) + 128
	}
	prepared.batch = e.db.NewBatchWithSize(size)
	return e.serialize(ctx, prepared, func(c *commit) error {
		if err := e.checkSchemaGuard(opts.SchemaRevision); err != nil {
			return err
		}
		c.meta = opts.Metadata
		for _, i := range byFwd {
			fwd, _, pay := set.parts(&set.muts[i])
			c.setForward(fwd, pay)
		}
		for _, i := range byRev {
			_, rv, pay := set.parts(&set.muts[i])
			c.set(rv, pay)
		}
		for i := range set.muts {
			fwd, _, pay := set.parts(&set.muts[i])
			c.log.add(storage.OpTouch, fwd, pay)
		}
		return nil
	})
}

// sortedOrders returns the mutation indexes ordered by forward key and by
// reverse key. Duplicates keep their input order (stable), so the last
// TOUCH of a relationship in a batch wins, as it does unsorted.
func (s *encodedSet) sortedOrders() (byFwd, byRev []int32) {
	byFwd = make([]int32, len(s.muts))
	for i := range byFwd {
		byFwd[i] = int32(i)
	}
	byRev = slices.Clone(byFwd)
	slices.SortStableFunc(byFwd, func(a, b int32) int {
		fa, _, _ := s.parts(&s.muts[a])
		fb, _, _ := s.parts(&s.muts[b])
		return bytes.Compare(fa, fb)
	})
	slices.SortStableFunc(byRev, func(a, b int32) int {
		_, ra, _ := s.parts(&s.muts[a])
		_, rb, _ := s.parts(&s.muts[b])
		return bytes.Compare(ra, rb)
	})
	return byFwd, byRev
}
