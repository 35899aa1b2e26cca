package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// The audit log's term index is written behind the log, not with it: a
// write stores its audit entry in its own batch, and a background indexer
// adds the entry's index terms later, many entries per unsynced batch,
// together with "m ai", the revision through which every entry is indexed.
// Keeping the terms out of the write's batch keeps them off the
// serialized, synced write path. The index is derived data: a crash may
// lose an indexer batch, never an entry, and the indexer redoes it from
// "m ai" on the next start.
//
// One indexer batch writes one key per term, a posting list: "a t <term>
// last" holds every revision of the batch indexed under term, last being
// the newest. Terms that repeat from entry to entry (the actor, object
// types, labels) so cost one key per batch instead of one per entry. The
// value lists the older revisions as varint gaps going down from last; an
// empty value is a list of last alone, which is also how keys written
// before posting lists read. Lists of one term never overlap: a batch
// covers revisions above every earlier batch's.
//
// A term query reads the index up to "m ai" and decodes the entries above
// it (the tail, normally a few milliseconds of writes), so it sees every
// committed entry whether indexed yet or not.

// auditIndexDelay is how long the indexer lets writes accumulate after
// one wakes it, so that one batch indexes many entries.
const auditIndexDelay = 5 * time.Millisecond

// auditIndexPageEntries bounds the entries one indexer batch covers.
const auditIndexPageEntries = 512

// loadAuditIndexed reads "m ai". A store without it predates the
// deferred index: every entry it holds was indexed as it was written, so
// the newest entry is the indexed-through revision, recorded now.
func (e *Engine) loadAuditIndexed() error {
	switch v, closer, err := e.db.Get(keyAuditTrimmed); {
	case err == nil:
		if len(v) >= 8 {
			e.auditTrimmed.Store(beUint64(v))
		}
		closer.Close()
	case !errors.Is(err, pdb.ErrNotFound):
		return fmt.Errorf("audit trim mark: %w", err)
	}
	v, closer, err := e.db.Get(keyAuditIndexed)
	if err == nil {
		defer closer.Close()
		if len(v) != 8 {
			return fmt.Errorf("audit index mark: %w", errCorrupt)
		}
		e.auditIndexed.Store(beUint64(v))
		return nil
	}
	if !errors.Is(err, pdb.ErrNotFound) {
		return fmt.Errorf("audit index mark: %w", err)
	}
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: auditEntryKey(0), UpperBound: []byte{spaceAudit, auditEntry + 1}})
	if err != nil {
		return err
	}
	var newest uint64
	if it.Last() {
		newest = beUint64(it.Key()[2:])
	}
	if err := it.Close(); err != nil {
		return err
	}
	if err := e.db.Set(keyAuditIndexed, binary.BigEndian.AppendUint64(nil, newest), e.writeOpt); err != nil {
		return fmt.Errorf("audit index mark: %w", err)
	}
	e.auditIndexed.Store(newest)
	return nil
}

// indexAuditContinuously runs the indexer until Close: it waits for a
// commit, lets a few more accumulate, and indexes everything committed.
// Failures are logged; the next commit retries.
func (e *Engine) indexAuditContinuously() {
	defer e.gcDone.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stopGC
		cancel()
	}()
	delay := time.NewTimer(0)
	<-delay.C
	for {
		changed := e.changed()
		if err := e.IndexAudit(ctx); err != nil && !errors.Is(err, storage.ErrClosed) && ctx.Err() == nil {
			log.Printf("pemba: audit log index: %v", err)
		}
		select {
		case <-e.stopGC:
			return
		case <-changed:
		}
		delay.Reset(auditIndexDelay)
		select {
		case <-e.stopGC:
			return
		case <-delay.C:
		}
	}
}

// IndexAudit indexes every audit entry committed when it starts and not
// indexed yet, and returns once the index has caught up with them. The
// background indexer calls it after commits; tests call it to reach a
// known state. Entries committed meanwhile are left to the next call:
// chasing them would index a busy log in ever smaller batches, each
// costing a commit and a key per repeated term.
func (e *Engine) IndexAudit(ctx context.Context) error {
	if e.opts.DisableAudit {
		return nil
	}
	e.indexMu.Lock()
	defer e.indexMu.Unlock()
	target := storage.Revision(e.head.Load())
	for {
		more, err := e.indexAuditPage(ctx, target)
		if err != nil {
			return fmt.Errorf("index audit log: %w", err)
		}
		if !more {
			return nil
		}
	}
}

// indexAuditPage indexes up to one batch of the entries above "m ai" and
// at or below target, and advances it; more is false once the index has
// reached target. The caller holds indexMu. An entry that cannot be
// decoded (a damaged store, which VerifyAudit reports) is logged and left
// out of the index.
func (e *Engine) indexAuditPage(ctx context.Context, target storage.Revision) (more bool, err error) {
	from := storage.Revision(e.auditIndexed.Load()) + 1
	_, head, ok := e.auditBounds(from, target)
	if !ok || from > head {
		return false, e.usable()
	}
	through, size := head, 0
	lists := make(map[string][]storage.Revision)
	add := func(rev storage.Revision, terms []string) {
		for _, term := range terms {
			lists[term] = append(lists[term], rev)
			size += len(term) + 3
		}
	}
	// Usually the writes handed over the terms of every entry of the page:
	// the entries need not be read. Otherwise they are, and decoded where
	// nothing was handed over; so they are too when a trim (which holds
	// indexMu, so this cannot change under us) removed some of the page's
	// entries, whose terms must not be indexed.
	var handed [][]string
	ok = from > storage.Revision(e.auditTrimmed.Load())
	if ok {
		handed, ok = e.handed.takeAll(from, min(head, from+auditIndexPageEntries-1))
	}
	if ok {
		for i, terms := range handed {
			add(from+storage.Revision(i), terms)
		}
		through = from + storage.Revision(len(handed)) - 1
	} else {
		n := 0
		err = e.scanPage(ctx, auditEntryKey(from), auditEntryKey(head+1), false, func(k, v []byte) bool {
			rev := storage.Revision(beUint64(k[2:]))
			terms, ok := e.handed.take(rev)
			if !ok {
				var err error
				if terms, err = auditlog.DecodeTerms(v); err != nil {
					log.Printf("pemba: audit log index: entry %d left out: %v", rev, err)
				}
			}
			add(rev, terms)
			n++
			if n >= auditIndexPageEntries || size >= auditPageBytes {
				through = rev
				return false
			}
			return true
		})
		if err != nil {
			return false, err
		}
	}
	// Sorted, the batch's keys go into the memtable as one ascending run,
	// each insert starting where the previous one ended.
	terms := make([]string, 0, len(lists))
	for term := range lists {
		terms = append(terms, term)
	}
	slices.Sort(terms)
	b := e.db.NewBatchWithSize(size + 32*len(terms) + 64)
	defer b.Close()
	var key, value []byte
	for _, term := range terms {
		revs := lists[term]
		key = auditTermKey(key[:0], term, revs[len(revs)-1])
		value = auditlog.AppendPostingList(value[:0], revs)
		_ = b.Set(key, value, nil)
	}
	_ = b.Set(keyAuditIndexed, binary.BigEndian.AppendUint64(nil, uint64(through)), nil)
	release, err := e.use()
	if err != nil {
		return false, err
	}
	defer release()
	if err := b.Commit(pdb.NoSync); err != nil {
		return false, err
	}
	e.auditIndexed.Store(uint64(through))
	e.handed.drop(from, through)
	return through < head, nil
}

// handedTerms holds the index terms writes computed for their entries
// before committing, by revision, until the indexer takes them. It is
// bounded: past handedMax entries (an indexer far behind) writes hand
// nothing more, and the indexer decodes those entries instead.
type handedTerms struct {
	mu    sync.Mutex
	terms map[storage.Revision][]string
}

const handedMax = 1 << 16

// put hands over the terms of rev's entry, unless the indexer is already
// past it (indexed, read under the lock that drop takes after the
// indexer advances it, so nothing the indexer passed stays behind) or
// too many wait.
func (h *handedTerms) put(rev storage.Revision, terms []string, indexed *atomic.Uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev <= storage.Revision(indexed.Load()) || len(h.terms) >= handedMax {
		return
	}
	if h.terms == nil {
		h.terms = make(map[storage.Revision][]string)
	}
	h.terms[rev] = terms
}

// take removes and returns the terms handed over for rev.
func (h *handedTerms) take(rev storage.Revision) ([]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.terms[rev]
	if ok {
		delete(h.terms, rev)
	}
	return t, ok
}

// takeAll removes and returns the terms handed over for every revision in
// [from, through], in order, if each has some; otherwise it takes none.
func (h *handedTerms) takeAll(from, through storage.Revision) ([][]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if through < from || uint64(len(h.terms)) <= uint64(through-from) {
		return nil, false
	}
	all := make([][]string, 0, through-from+1)
	for rev := from; rev <= through; rev++ {
		t, ok := h.terms[rev]
		if !ok {
			return nil, false
		}
		all = append(all, t)
	}
	for rev := from; rev <= through; rev++ {
		delete(h.terms, rev)
	}
	return all, true
}

// drop forgets terms handed over for revisions in [from, through], which
// the index now covers: a write that handed its terms after the indexer
// had decoded its entry.
func (h *handedTerms) drop(from, through storage.Revision) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.terms) == 0 {
		return
	}
	for rev := from; rev <= through; rev++ {
		delete(h.terms, rev)
	}
}

// termRevisions streams the revisions in [lo, hi] indexed under term: from
// the index up to the indexed-through revision, and from the entries
// themselves above it.
func (e *Engine) termRevisions(ctx context.Context, term string, lo, hi storage.Revision, desc bool) iter.Seq2[storage.Revision, error] {
	indexed := storage.Revision(e.auditIndexed.Load())
	fromIndex := func(yield func(storage.Revision, error) bool) bool {
		// A posting list that straddled a trim still names trimmed entries.
		lo := max(lo, storage.Revision(e.auditTrimmed.Load())+1)
		if lo > min(hi, indexed) {
			return true
		}
		return e.indexedRevisions(ctx, term, lo, min(hi, indexed), desc, yield)
	}
	fromEntries := func(yield func(storage.Revision, error) bool) bool {
		if max(lo, indexed+1) > hi {
			return true
		}
		return e.unindexedRevisions(ctx, term, max(lo, indexed+1), hi, desc, yield)
	}
	return func(yield func(storage.Revision, error) bool) {
		if desc {
			_ = fromEntries(yield) && fromIndex(yield)
			return
		}
		_ = fromIndex(yield) && fromEntries(yield)
	}
}

// indexedRevisions yields the revisions in [lo, hi] of term's posting
// lists, a page at a time; it returns false once yield has.
func (e *Engine) indexedRevisions(ctx context.Context, term string, lo, hi storage.Revision, desc bool, yield func(storage.Revision, error) bool) bool {
	prefix := auditTermPrefix(nil, term)
	page := make([]storage.Revision, 0, auditPageRevisions+auditIndexPageEntries)
	for ok := true; ok; {
		var err error
		if page, err = e.postingPage(ctx, prefix, lo, hi, desc, page[:0]); err != nil {
			yield(0, fmt.Errorf("audit term %q: %w", term, err))
			return false
		}
		for _, rev := range page {
			if !yield(rev, nil) {
				return false
			}
		}
		if len(page) == 0 {
			return true
		}
		ok, lo, hi = nextPage(lo, hi, page[len(page)-1], desc)
	}
	return true
}

// postingPage appends to page the revisions in [lo, hi] of the posting
// lists under prefix, in order, whole lists at a time until the page holds
// auditPageRevisions or more.
func (e *Engine) postingPage(ctx context.Context, prefix []byte, lo, hi storage.Revision, desc bool, page []storage.Revision) ([]storage.Revision, error) {
	end := append(slices.Clip(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0) // after every list of the term
	var list []storage.Revision
	var bad error
	// take adds the revisions of the list at k (the newest is k's last
	// eight bytes) that fall in [lo, hi]; false once the page is full.
	take := func(k, v []byte) bool {
		list, bad = auditlog.DecodePostingList(list[:0], storage.Revision(beUint64(k[len(prefix):])), v)
		if bad != nil {
			return false
		}
		if desc {
			for i := len(list) - 1; i >= 0; i-- {
				if r := list[i]; r >= lo && r <= hi {
					page = append(page, r)
				}
			}
		} else {
			for _, r := range list {
				if r >= lo && r <= hi {
					page = append(page, r)
				}
			}
		}
		return len(page) < auditPageRevisions
	}
	lower := binary.BigEndian.AppendUint64(slices.Clip(prefix), uint64(lo))
	upper := binary.BigEndian.AppendUint64(slices.Clip(prefix), uint64(hi))
	if !desc {
		// Lists ending at lo or later, until the first one ending after hi.
		err := e.scanPage(ctx, lower, end, false, func(k, v []byte) bool {
			return take(k, v) && storage.Revision(beUint64(k[len(prefix):])) < hi
		})
		return page, errors.Join(err, bad)
	}
	// The first list ending at hi or later may hold revisions up to hi;
	// then the lists ending in [lo, hi), newest first.
	full := false
	err := e.scanPage(ctx, upper, end, false, func(k, v []byte) bool {
		full = !take(k, v)
		return false
	})
	if err != nil || bad != nil || full {
		return page, errors.Join(err, bad)
	}
	err = e.scanPage(ctx, lower, upper, true, take)
	return page, errors.Join(err, bad)
}

// unindexedRevisions yields the revisions in [lo, hi] whose entries have
// term among their index terms, decoding each entry; it returns false
// once yield has.
func (e *Engine) unindexedRevisions(ctx context.Context, term string, lo, hi storage.Revision, desc bool, yield func(storage.Revision, error) bool) bool {
	for en, err := range e.AuditEntries(ctx, lo, hi, desc) {
		if err != nil {
			yield(0, err)
			return false
		}
		terms, err := auditlog.DecodeTerms(en.Value)
		if err != nil {
			yield(0, fmt.Errorf("audit term %q: entry %d: %w", term, en.Revision, err))
			return false
		}
		if _, found := slices.BinarySearch(terms, term); found && !yield(en.Revision, nil) {
			return false
		}
	}
	return true
}
