package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// Reads of the audit log gather a page holding the close lock, then
// release it and yield the page, so a slow consumer never holds up Close
// and memory stays bounded: a page ends after auditPageEntries entries
// or auditPageBytes bytes of them (at least one entry), or after
// auditPageRevisions revisions of a term.
const (
	auditPageEntries   = 64
	auditPageBytes     = 1 << 20
	auditPageRevisions = 1024
)

// builders recycles the Builders of written entries: a Builder keeps its
// buffers and hash state, so a write that reuses one allocates next to
// nothing for its entry. Builders of entries over maxPooledEntry bytes (an
// import batch's) are left to the garbage collector rather than kept.
var builders = sync.Pool{New: func() any { return new(auditlog.Builder) }}

const maxPooledEntry = 16 << 10

// auditBuilder starts the audit entry of a write, or returns nil when the
// audit log is disabled. Once the entry is applied, or the write has
// failed, the caller hands it back with releaseBuilder.
func (e *Engine) auditBuilder(kind storage.AuditKind, meta storage.WriteMetadata, diff []storage.SchemaChange) *auditlog.Builder {
	if e.opts.DisableAudit {
		return nil
	}
	b := builders.Get().(*auditlog.Builder)
	b.Reset(kind, meta, diff)
	return b
}

// releaseBuilder returns b (nil: none) to the pool. Nothing may use b or
// a value its Seal returned afterwards; what a batch's Set copied is not
// affected.
func releaseBuilder(b *auditlog.Builder) {
	if b != nil && b.Len() <= maxPooledEntry {
		builders.Put(b)
	}
}

// auditAdd adds a change to an audit entry; pay is the relationship's
// stored payload, whose caveat context is already encoded.
func auditAdd(b *auditlog.Builder, op storage.Op, r *graph.Relationship, pay []byte) error {
	var ctxJSON []byte
	if r.Caveat != nil {
		pl, err := decodePayload(pay)
		if err != nil {
			return err
		}
		ctxJSON = pl.caveatCtx
	}
	return b.Add(op, r, ctxJSON)
}

// audited records a created or touched relationship, whose payload is
// pay, in the revision's audit entry.
func (c *commit) audited(op storage.Op, r *graph.Relationship, pay []byte) error {
	if c.audit == nil || c.auditBuilt {
		return nil
	}
	return auditAdd(c.audit, op, r, pay)
}

// auditedDelete records the deletion of a live relationship: its identity
// is r's, its caveat and expiration those of the version deleted.
func (c *commit) auditedDelete(r *graph.Relationship, stored *payload) error {
	if c.audit == nil || c.auditBuilt {
		return nil
	}
	gone := graph.Relationship{Resource: r.Resource, Relation: r.Relation, Subject: r.Subject}
	if stored.hasCaveat {
		gone.Caveat = &graph.Caveat{Name: string(stored.caveatName)}
	}
	if !stored.expiration.IsZero() {
		exp := stored.expiration
		gone.Expiration = &exp
	}
	// The stored context is already encoded: Add takes it as is (not
	// nil, also when empty).
	ctxJSON := stored.caveatCtx
	if ctxJSON == nil {
		ctxJSON = []byte{}
	}
	return c.audit.Add(storage.OpDelete, &gone, ctxJSON)
}

// addAuditEntry seals the revision's audit entry, chained to the engine's
// audit head, and adds it (and an import entry's object filter) to the
// batch. Its index terms are not written here: the background indexer
// (auditindex.go) adds them after the commit, off the write path. It
// returns the entry's hash, the head once the batch is applied. The
// caller holds writeMu and has settled c.now.
func (c *commit) addAuditEntry() storage.AuditHash {
	filter := c.auditFilter
	if !c.auditFiltered {
		filter = c.audit.Filter()
	}
	if filter != nil {
		_ = c.batch.Set(auditFilterKey(c.rev), filter, nil)
	}
	value, h := c.audit.Seal(c.rev, c.now, c.e.auditHead)
	c.key = appendAuditEntryKey(c.key[:0], c.rev)
	_ = c.batch.Set(c.key, value, nil) // the batch copies key and value
	return h
}

// loadAuditHead returns the hash of the newest stored audit entry, or of
// the newest trimmed one when TrimAudit removed them all (zero for a log
// that never held an entry).
func (e *Engine) loadAuditHead() (storage.AuditHash, error) {
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: auditEntryKey(0), UpperBound: []byte{spaceAudit, auditEntry + 1}})
	if err != nil {
		return storage.AuditHash{}, err
	}
	defer it.Close()
	if it.Last() {
		h, err := auditlog.HashOf(it.Value())
		if err != nil {
			return h, fmt.Errorf("entry %d: %w", beUint64(it.Key()[2:]), err)
		}
		return h, nil
	}
	if err := it.Error(); err != nil {
		return storage.AuditHash{}, err
	}
	v, closer, err := e.db.Get(keyAuditTrimmed)
	if errors.Is(err, pdb.ErrNotFound) {
		return storage.AuditHash{}, nil
	}
	if err != nil {
		return storage.AuditHash{}, err
	}
	defer closer.Close()
	if len(v) != 8+len(storage.AuditHash{}) {
		return storage.AuditHash{}, fmt.Errorf("newest trimmed entry: %w", errCorrupt)
	}
	return storage.AuditHash(v[8:]), nil
}

// auditBounds clips [from, to] (to 0: no upper bound) to the published
// head; ok is false when nothing is left. Entries above the head may
// belong to a write whose sync is still in flight: they are not
// committed yet.
func (e *Engine) auditBounds(from, to storage.Revision) (lo, hi storage.Revision, ok bool) {
	lo, hi = max(from, 1), storage.Revision(e.head.Load())
	if to != 0 {
		hi = min(hi, to)
	}
	return lo, hi, lo <= hi && !e.opts.DisableAudit
}

// scanPage visits the keys in [lower, upper), ascending or descending,
// holding the close lock, until visit returns false.
func (e *Engine) scanPage(ctx context.Context, lower, upper []byte, desc bool, visit func(k, v []byte) bool) error {
	release, err := e.use()
	if err != nil {
		return err
	}
	defer release()
	it, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	step, valid := it.Next, it.First()
	if desc {
		step, valid = it.Prev, it.Last()
	}
	for ; valid; valid = step() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !visit(it.Key(), it.Value()) {
			break
		}
	}
	return it.Error()
}

// AuditEntries streams the audit entries with revisions in [from, to].
func (e *Engine) AuditEntries(ctx context.Context, from, to storage.Revision, desc bool) iter.Seq2[storage.RawAuditEntry, error] {
	return func(yield func(storage.RawAuditEntry, error) bool) {
		lo, hi, ok := e.auditBounds(from, to)
		var page []storage.RawAuditEntry
		for ok {
			page = page[:0]
			size := 0
			err := e.scanPage(ctx, auditEntryKey(lo), auditEntryKey(hi+1), desc, func(k, v []byte) bool {
				page = append(page, storage.RawAuditEntry{Revision: storage.Revision(beUint64(k[2:])), Value: bytes.Clone(v)})
				size += len(v)
				return len(page) < auditPageEntries && size < auditPageBytes
			})
			if err != nil {
				yield(storage.RawAuditEntry{}, fmt.Errorf("audit entries: %w", err))
				return
			}
			for _, en := range page {
				if !yield(en, nil) {
					return
				}
			}
			if len(page) == 0 {
				return
			}
			ok, lo, hi = nextPage(lo, hi, page[len(page)-1].Revision, desc)
		}
	}
}

// nextPage narrows [lo, hi] to the revisions after last in the scan's
// direction; ok is false when none is left.
func nextPage(lo, hi, last storage.Revision, desc bool) (ok bool, nlo, nhi storage.Revision) {
	if desc {
		return last > lo, lo, last - 1
	}
	return last < hi, last + 1, hi
}

// AuditTermRevisions streams the revisions in [from, to] indexed under term.
func (e *Engine) AuditTermRevisions(ctx context.Context, term string, from, to storage.Revision, desc bool) iter.Seq2[storage.Revision, error] {
	lo, hi, ok := e.auditBounds(from, to)
	if !ok {
		return func(func(storage.Revision, error) bool) {}
	}
	return e.termRevisions(ctx, term, lo, hi, desc)
}

// AuditEntry returns the audit entry of rev.
func (e *Engine) AuditEntry(ctx context.Context, rev storage.Revision) (storage.RawAuditEntry, bool, error) {
	if _, _, ok := e.auditBounds(rev, rev); !ok || rev == 0 {
		return storage.RawAuditEntry{}, false, e.usable()
	}
	release, err := e.use()
	if err != nil {
		return storage.RawAuditEntry{}, false, err
	}
	defer release()
	v, err := e.get(auditEntryKey(rev))
	if errors.Is(err, pdb.ErrNotFound) {
		return storage.RawAuditEntry{}, false, nil
	}
	if err != nil {
		return storage.RawAuditEntry{}, false, fmt.Errorf("audit entry %d: %w", rev, err)
	}
	return storage.RawAuditEntry{Revision: rev, Value: v}, true, nil
}

// AuditFilter returns the object filter stored with the entry of rev.
func (e *Engine) AuditFilter(ctx context.Context, rev storage.Revision) ([]byte, bool, error) {
	if _, _, ok := e.auditBounds(rev, rev); !ok || rev == 0 {
		return nil, false, e.usable()
	}
	release, err := e.use()
	if err != nil {
		return nil, false, err
	}
	defer release()
	v, err := e.get(auditFilterKey(rev))
	if errors.Is(err, pdb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("audit filter %d: %w", rev, err)
	}
	return v, true, nil
}

// usable returns ErrClosed once the engine is closed.
func (e *Engine) usable() error {
	release, err := e.use()
	if err == nil {
		release()
	}
	return err
}

// AuditRevisionAt returns the newest audited revision committed at or
// before t: a binary search over the entry keys (revisions may have gaps
// where the log was disabled or trimmed), reading each probe's commit
// time from its header. Commit times never go back as revisions grow.
func (e *Engine) AuditRevisionAt(ctx context.Context, t time.Time) (storage.Revision, error) {
	_, head, ok := e.auditBounds(1, 0)
	if !ok {
		return 0, e.usable()
	}
	release, err := e.use()
	if err != nil {
		return 0, err
	}
	defer release()
	it, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{LowerBound: auditEntryKey(1), UpperBound: auditEntryKey(head + 1)})
	if err != nil {
		return 0, fmt.Errorf("audit revision at %v: %w", t, err)
	}
	defer it.Close()
	// Find the smallest r in [1, head+1] such that no entry at or after r
	// was committed at or before t; the answer is the entry before r.
	lo, hi := storage.Revision(1), head+1
	for lo < hi {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		mid := lo + (hi-lo)/2
		if !it.SeekGE(auditEntryKey(mid)) {
			hi = mid
			continue
		}
		at, err := auditlog.CommittedAt(it.Value())
		if err != nil {
			return 0, fmt.Errorf("audit entry %d: %w", beUint64(it.Key()[2:]), err)
		}
		if at.After(t) {
			hi = mid
		} else {
			lo = storage.Revision(beUint64(it.Key()[2:])) + 1
		}
	}
	if it.SeekLT(auditEntryKey(lo)) {
		return storage.Revision(beUint64(it.Key()[2:])), nil
	}
	return 0, it.Error()
}

// TrimAudit removes the audit entries committed before `before`, oldest
// first, with their index terms (found by recomputing the entry's terms),
// in batches of bounded size. A batch also records the newest entry it
// removed, so the chain continues from it when the whole log goes.
func (e *Engine) TrimAudit(ctx context.Context, before time.Time) (int, error) {
	e.trimMu.Lock()
	defer e.trimMu.Unlock()
	// The indexer must not add terms of an entry this removes.
	e.indexMu.Lock()
	defer e.indexMu.Unlock()
	n := 0
	for {
		removed, done, err := e.trimPage(ctx, before)
		n += removed
		if err != nil {
			return n, fmt.Errorf("trim audit log: %w", err)
		}
		if done {
			return n, nil
		}
	}
}

// trimPage removes up to one batch of entries committed before `before`;
// done is true once no such entry is left. The caller holds trimMu.
func (e *Engine) trimPage(ctx context.Context, before time.Time) (removed int, done bool, err error) {
	_, head, ok := e.auditBounds(1, 0)
	if !ok {
		return 0, true, e.usable()
	}
	b := e.db.NewBatch()
	defer b.Close()
	var first, last storage.Revision
	var lastHash storage.AuditHash
	var key []byte
	var bad error // an entry that cannot be decoded stops the trim
	done = true
	err = e.scanPage(ctx, auditEntryKey(1), auditEntryKey(head+1), false, func(k, v []byte) bool {
		rev := storage.Revision(beUint64(k[2:]))
		at, err := auditlog.CommittedAt(v)
		if err == nil && !at.Before(before) {
			return false
		}
		en, derr := auditlog.Decode(v)
		if err = errors.Join(err, derr); err != nil {
			bad = fmt.Errorf("entry %d: %w", rev, err)
			return false
		}
		for _, term := range auditlog.Terms(&en) {
			key = auditTermKey(key[:0], term, rev)
			_ = b.Delete(key, nil)
		}
		if rev >= storage.Revision(e.floor.Load()) {
			if err = e.keepRevisionRecord(b, &en); err != nil {
				bad = fmt.Errorf("entry %d: %w", rev, err)
				return false
			}
		}
		if first == 0 {
			first = rev
		}
		last, lastHash = rev, en.Hash
		removed++
		if b.Len() >= auditPageBytes || b.Count() >= gcChunk {
			done = false
			return false
		}
		return true
	})
	if err != nil {
		return 0, true, err
	}
	if removed > 0 {
		_ = b.DeleteRange(auditEntryKey(first), auditEntryKey(last+1), nil)
		_ = b.DeleteRange(auditFilterKey(first), auditFilterKey(last+1), nil)
		_ = b.Set(keyAuditTrimmed, append(binary.BigEndian.AppendUint64(nil, uint64(last)), lastHash[:]...), nil)
		if err := e.commitBatch(b); err != nil {
			return 0, true, err
		}
		e.auditTrimmed.Store(uint64(last))
	}
	return removed, done || bad != nil, bad
}

// keepRevisionRecord adds to b, for an audit entry about to be trimmed
// whose revision garbage collection has not passed yet, the revision
// record and change log it stood for (see recordedByAudit), so Watch
// and garbage collection still find the revision. An entry whose
// revision has them already is left alone.
func (e *Engine) keepRevisionRecord(b *pdb.Batch, en *storage.AuditEntry) error {
	key := revisionKey(spaceRevision, en.Revision)
	_, closer, err := e.db.Get(key)
	if err == nil {
		return closer.Close()
	}
	if !errors.Is(err, pdb.ErrNotFound) {
		return err
	}
	ch := changeOf(en)
	rr := revisionRecord{committedAt: ch.CommittedAt, meta: ch.Metadata, schemaChanged: ch.SchemaChanged}
	var log changeLog
	var fwd, pay []byte
	for _, c := range ch.Relationships {
		ctxJSON, err := storage.EncodeCaveatContext(caveatContext(&c.Relationship))
		if err != nil {
			return err
		}
		fwd = forward.appendBody(fwd[:0], &c.Relationship)
		pay = appendPayload(pay[:0], &c.Relationship, ctxJSON)
		log.add(c.Op, fwd, pay)
	}
	_ = b.Set(key, rr.encode(), nil)
	_ = b.Set(revisionKey(spaceChanges, en.Revision), log.encode(), nil)
	return nil
}

// caveatContext is r's caveat context (nil: none).
func caveatContext(r *graph.Relationship) map[string]any {
	if r.Caveat == nil {
		return nil
	}
	return r.Caveat.Context
}

// commitBatch applies a maintenance batch, unless the engine has closed.
func (e *Engine) commitBatch(b *pdb.Batch) error {
	release, err := e.use()
	if err != nil {
		return err
	}
	defer release()
	return b.Commit(e.writeOpt)
}

// RewriteAuditEntry replaces the stored audit entry of rev with
// edit(value), bypassing the write path and the hash chain, as someone
// with write access to the data directory could. It exists for tests of
// tamper detection (storagetest.WithTamper); nothing else calls it.
func (e *Engine) RewriteAuditEntry(rev storage.Revision, edit func(value []byte) []byte) error {
	release, err := e.use()
	if err != nil {
		return err
	}
	defer release()
	v, err := e.get(auditEntryKey(rev))
	if err != nil {
		return fmt.Errorf("rewrite audit entry %d: %w", rev, err)
	}
	return e.db.Set(auditEntryKey(rev), edit(v), e.writeOpt)
}
