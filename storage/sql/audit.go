package sql

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// The audit log lives in two tables (migration 0004): audit_entries holds
// each revision's sealed entry, audit_terms the posting lists of its index
// terms. A write reads the chain's head — the newest entry's hash — once
// it holds the revision counter's lock (stmtAuditHead, migration 0007) and
// stores its entry, which is also the revision's record (stmtInsertAuditEntry,
// migration 0008), in the final round trip of its transaction
// (inRevision), so an entry commits exactly when its revision does; its terms follow, written by the
// indexer (audit_index.go, migrations 0005 and 0006).

// Page bounds of the audit reads. An entry can be large (an import batch
// lists every relationship it wrote), so a page of entries also stops at
// a byte budget; a page of revisions is just numbers.
const (
	auditPageEntries = 64
	auditPageBytes   = 4 << 20
	termListPage     = 64 // posting lists, of at most auditIndexBatch revisions each
)

// Bounds of one TrimAudit transaction: at most trimBatch entries, and no
// more once their terms number trimTermBudget.
const (
	trimBatch      = 256
	trimTermBudget = 50_000
)

// sealed is an audit entry ready to store: its encoding, object filter
// and hash (the next entry's PrevHash).
type sealed struct {
	value  []byte
	filter []byte
	hash   storage.AuditHash
	err    error
}

// sealEntry seals e, chained to head (the hash stmtAuditHead returned:
// nil before the first entry).
func sealEntry(e storage.AuditEntry, head []byte) sealed {
	switch len(head) {
	case 0: // the first entry the log holds chains to the zero hash
	case len(e.PrevHash):
		copy(e.PrevHash[:], head)
	default:
		return sealed{err: fmt.Errorf("audit chain head (the newest entry's hash) is %d bytes, want %d", len(head), len(e.PrevHash))}
	}
	value, _, filter, err := auditlog.SealIndexed(&e)
	if err != nil {
		return sealed{err: fmt.Errorf("seal audit entry: %w", err)}
	}
	return sealed{value: value, filter: filter, hash: e.Hash}
}

// sealConcurrently runs sealEntry in a goroutine; the function it returns
// waits for the result (and may be called again).
func sealConcurrently(e storage.AuditEntry, head []byte) func() sealed {
	done := make(chan sealed, 1)
	go func() { done <- sealEntry(e, head) }()
	return sync.OnceValue(func() sealed { return <-done })
}

// labelsColumn flattens labels, sorted by key then value, into the
// revisions.labels column: key, value, key, value..., nil (NULL) when
// there are none.
func labelsColumn(labels []storage.Label) []string {
	if len(labels) == 0 {
		return nil
	}
	sorted := slices.SortedFunc(slices.Values(labels), func(a, b storage.Label) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	out := make([]string, 0, 2*len(sorted))
	for _, l := range sorted {
		out = append(out, l.Key, l.Value)
	}
	return out
}

// labelsFromColumn reads the revisions.labels column back.
func labelsFromColumn(col []string) ([]storage.Label, error) {
	if len(col)%2 != 0 {
		return nil, fmt.Errorf("labels column holds %d strings, not key-value pairs", len(col))
	}
	if len(col) == 0 {
		return nil, nil
	}
	out := make([]storage.Label, len(col)/2)
	for i := range out {
		out[i] = storage.Label{Key: col[2*i], Value: col[2*i+1]}
	}
	return out, nil
}

// revisionRange converts a [from, to] range of the AuditLog methods (to 0:
// no upper bound) to the BIGINT bounds the statements take; ok is false
// when no stored revision can fall in it.
func revisionRange(from, to storage.Revision) (lo, hi int64, ok bool) {
	if to == 0 || to > math.MaxInt64 {
		to = math.MaxInt64
	}
	if from > to {
		return 0, 0, false
	}
	return int64(from), int64(to), true
}

// AuditEntries streams the entries with revisions in [from, to] (to 0: no
// upper bound), ascending or descending. It reads a page at a time and
// holds no connection while the caller iterates.
func (e *Engine) AuditEntries(ctx context.Context, from, to storage.Revision, desc bool) iter.Seq2[storage.RawAuditEntry, error] {
	return func(yield func(storage.RawAuditEntry, error) bool) {
		if err := e.checkOpen(); err != nil {
			yield(storage.RawAuditEntry{}, err)
			return
		}
		lo, hi, ok := revisionRange(from, to)
		for ok {
			page, more, err := e.auditEntriesPage(ctx, lo, hi, desc)
			if err != nil {
				yield(storage.RawAuditEntry{}, fmt.Errorf("audit entries in [%d, %d]: %w", lo, hi, err))
				return
			}
			for _, en := range page {
				if !yield(en, nil) {
					return
				}
			}
			if !more {
				return
			}
			lo, hi, ok = nextPage(lo, hi, int64(page[len(page)-1].Revision), desc)
		}
	}
}

// nextPage narrows [lo, hi] to what follows last in the read's direction.
func nextPage(lo, hi, last int64, desc bool) (int64, int64, bool) {
	if desc {
		return lo, last - 1, last > lo
	}
	return last + 1, hi, last < hi
}

// auditEntriesPage reads the first page of entries in [lo, hi]; more
// reports that the page is full, so more may follow.
func (e *Engine) auditEntriesPage(ctx context.Context, lo, hi int64, desc bool) (page []storage.RawAuditEntry, more bool, err error) {
	stmt := stmtAuditEntries
	if desc {
		stmt = stmtAuditEntriesDesc
	}
	rows, err := e.pool.Query(ctx, stmt, lo, hi, auditPageEntries)
	if err != nil {
		return nil, false, unavailable(err)
	}
	defer rows.Close()
	size := 0
	for rows.Next() {
		var rev int64
		var value []byte
		if err := rows.Scan(&rev, &value); err != nil {
			return nil, false, err
		}
		page = append(page, storage.RawAuditEntry{Revision: storage.Revision(rev), Value: value})
		if size += len(value); size >= auditPageBytes {
			return page, true, nil // Close discards the rest of the page
		}
	}
	return page, len(page) == auditPageEntries, unavailable(rows.Err())
}

// AuditTermRevisions streams the revisions in [from, to] (to 0: no upper
// bound) of the entries indexed under term, ascending or descending: from
// audit_terms up to the indexed-through mark, and by decoding the entries
// above it.
func (e *Engine) AuditTermRevisions(ctx context.Context, term string, from, to storage.Revision, desc bool) iter.Seq2[storage.Revision, error] {
	return func(yield func(storage.Revision, error) bool) {
		if err := e.checkOpen(); err != nil {
			yield(0, err)
			return
		}
		lo, hi, ok := revisionRange(from, to)
		if !ok {
			return
		}
		var indexed, oldest int64
		if err := e.pool.QueryRow(ctx, stmtAuditIndexedOldest).Scan(&indexed, &oldest); err != nil {
			yield(0, fmt.Errorf("audit revisions of term %q: indexed-through mark: %w", term, unavailable(err)))
			return
		}
		fromIndex := func() bool {
			lo := max(lo, oldest) // a list cut by a trim names trimmed entries
			return lo > min(hi, indexed) || e.indexedRevisions(ctx, term, lo, min(hi, indexed), desc, yield)
		}
		fromEntries := func() bool {
			return max(lo, indexed+1) > hi || e.unindexedRevisions(ctx, term, max(lo, indexed+1), hi, desc, yield)
		}
		if desc {
			_ = fromEntries() && fromIndex()
			return
		}
		_ = fromIndex() && fromEntries()
	}
}

// indexedRevisions yields the revisions in [lo, hi] of term's posting
// lists, termListPage lists at a time; it returns false once yield has.
func (e *Engine) indexedRevisions(ctx context.Context, term string, lo, hi int64, desc bool, yield func(storage.Revision, error) bool) bool {
	fail := func(err error) bool {
		yield(0, fmt.Errorf("audit revisions of term %q in [%d, %d]: %w", term, lo, hi, err))
		return false
	}
	// emit yields the revisions of lists in [lo, hi], in order.
	emit := func(lists [][]storage.Revision) bool {
		for _, list := range lists {
			if desc {
				for i := len(list) - 1; i >= 0; i-- {
					if r := int64(list[i]); r >= lo && r <= hi && !yield(list[i], nil) {
						return false
					}
				}
				continue
			}
			for _, rev := range list {
				if r := int64(rev); r >= lo && r <= hi && !yield(rev, nil) {
					return false
				}
			}
		}
		return true
	}
	if !desc {
		// The lists ending at lo or later, until one ends at hi or later.
		for from := lo; ; {
			lists, err := e.termLists(ctx, stmtAuditTermLists, term, from, termListPage)
			if err != nil {
				return fail(err)
			}
			if !emit(lists) {
				return false
			}
			if len(lists) < termListPage {
				return true
			}
			last := newestOf(lists)
			if last >= hi {
				return true
			}
			from = last + 1
		}
	}
	// The first list ending at hi or later may hold revisions up to hi;
	// then the lists ending in [lo, hi), newest first.
	first, err := e.termLists(ctx, stmtAuditTermLists, term, hi, 1)
	if err != nil {
		return fail(err)
	}
	if !emit(first) {
		return false
	}
	for below := hi; ; {
		lists, err := e.termLists(ctx, stmtAuditTermListsDesc, term, lo, below, termListPage)
		if err != nil {
			return fail(err)
		}
		if !emit(lists) {
			return false
		}
		if len(lists) < termListPage {
			return true
		}
		below = newestOf(lists)
	}
}

// newestOf is the newest revision of the last of lists (each ascending).
func newestOf(lists [][]storage.Revision) int64 {
	last := lists[len(lists)-1]
	return int64(last[len(last)-1])
}

// termLists reads one page of posting lists with stmt and its arguments,
// each list ascending.
func (e *Engine) termLists(ctx context.Context, stmt string, args ...any) ([][]storage.Revision, error) {
	rows, err := e.pool.Query(ctx, stmt, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var lists [][]storage.Revision
	for rows.Next() {
		var last int64
		var earlier []byte
		if err := rows.Scan(&last, &earlier); err != nil {
			return nil, err
		}
		list, err := auditlog.DecodePostingList(nil, storage.Revision(last), earlier)
		if err != nil {
			return nil, err
		}
		lists = append(lists, list)
	}
	return lists, unavailable(rows.Err())
}

// unindexedRevisions yields the revisions in [lo, hi] whose entries have
// term among their index terms, decoding each entry; it returns false
// once yield has.
func (e *Engine) unindexedRevisions(ctx context.Context, term string, lo, hi int64, desc bool, yield func(storage.Revision, error) bool) bool {
	for en, err := range e.AuditEntries(ctx, storage.Revision(lo), storage.Revision(hi), desc) {
		if err != nil {
			yield(0, err)
			return false
		}
		terms, err := auditlog.DecodeTerms(en.Value)
		if err != nil {
			yield(0, fmt.Errorf("audit revisions of term %q: entry %d: %w", term, en.Revision, err))
			return false
		}
		if _, found := slices.BinarySearch(terms, term); found && !yield(en.Revision, nil) {
			return false
		}
	}
	return true
}

// AuditEntry returns the entry of rev; ok is false when the log holds
// none.
func (e *Engine) AuditEntry(ctx context.Context, rev storage.Revision) (storage.RawAuditEntry, bool, error) {
	if err := e.checkOpen(); err != nil {
		return storage.RawAuditEntry{}, false, err
	}
	if rev > math.MaxInt64 {
		return storage.RawAuditEntry{}, false, nil
	}
	var value []byte
	err := e.pool.QueryRow(ctx, stmtAuditEntry, int64(rev)).Scan(&value)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.RawAuditEntry{}, false, nil
	case err != nil:
		return storage.RawAuditEntry{}, false, fmt.Errorf("audit entry of revision %d: %w", rev, unavailable(err))
	}
	return storage.RawAuditEntry{Revision: rev, Value: value}, true, nil
}

// AuditFilter returns the object filter stored with the entry of rev.
func (e *Engine) AuditFilter(ctx context.Context, rev storage.Revision) ([]byte, bool, error) {
	if err := e.checkOpen(); err != nil {
		return nil, false, err
	}
	if rev > math.MaxInt64 {
		return nil, false, nil
	}
	var filter []byte
	err := e.pool.QueryRow(ctx, stmtAuditFilter, int64(rev)).Scan(&filter)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("audit filter of revision %d: %w", rev, unavailable(err))
	}
	return filter, true, nil
}

// AuditRevisionAt returns the newest audited revision committed at or
// before t, or 0.
func (e *Engine) AuditRevisionAt(ctx context.Context, t time.Time) (storage.Revision, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	// Commit times are stored to the microsecond: at or before t is at or
	// before t rounded down.
	var rev int64
	err := e.pool.QueryRow(ctx, stmtAuditRevisionAt, t.Truncate(time.Microsecond)).Scan(&rev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("audit revision at %s: %w", t.Format(time.RFC3339Nano), unavailable(err))
	}
	return storage.Revision(rev), nil
}

// TrimAudit removes the entries committed before `before`, oldest first,
// with their index terms, and reports how many it removed. Each batch of
// entries goes in its own short transaction, so a long trim neither holds
// locks writers need nor keeps much in memory; an error leaves the
// batches already trimmed trimmed, and counted.
func (e *Engine) TrimAudit(ctx context.Context, before time.Time) (int, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	// Commit times are stored to the microsecond: before t is before t
	// rounded up.
	cut := before.Truncate(time.Microsecond)
	if cut.Before(before) {
		cut = cut.Add(time.Microsecond)
	}
	total := 0
	for {
		n, more, err := e.trimAuditBatch(ctx, cut)
		total += n
		if err != nil {
			return total, fmt.Errorf("trim audit entries committed before %s: %w", before.Format(time.RFC3339Nano), err)
		}
		if !more {
			return total, nil
		}
	}
}

// trimAuditBatch removes one batch of the oldest entries committed before
// cut, with their terms; more reports that others may remain.
func (e *Engine) trimAuditBatch(ctx context.Context, cut time.Time) (n int, more bool, err error) {
	err = runWrite(ctx, e.dialect, e.pool, func(tx pgx.Tx) error {
		// The indexer must not add terms of an entry this removes.
		var indexed int64
		if err := tx.QueryRow(ctx, stmtLockAuditIndex).Scan(&indexed); err != nil {
			return fmt.Errorf("lock the audit index: %w", err)
		}
		doomed, err := readOldestEntries(ctx, tx, cut)
		if err != nil || len(doomed.revs) == 0 {
			n, more = 0, false
			return err
		}
		_, floor, err := e.bounds(ctx, tx)
		if err != nil {
			return err
		}
		var batch pgx.Batch
		// An entry whose revision garbage collection has not passed yet is
		// still that revision's record: Watch and the collector read it.
		// Its metadata stays behind, as a revision record.
		for _, en := range doomed.entries {
			if en.Revision >= floor {
				m := en.Metadata
				batch.Queue(stmtKeepRevisionRecord, int64(en.Revision), en.CommittedAt, m.Actor, m.Reason, labelsColumn(m.Labels),
					en.Kind == storage.AuditSchema)
			}
		}
		if len(doomed.terms) > 0 {
			batch.Queue(stmtDeleteAuditTerms, doomed.terms, doomed.termRevs)
		}
		for _, rev := range doomed.corrupt {
			batch.Queue(stmtDeleteAuditTermsOfRevision, rev)
		}
		if doomed.newestHash != nil {
			batch.Queue(stmtSetAuditTrimmedHash, doomed.newestHash)
		}
		// The entries go last: their count is what this batch removed (a
		// concurrent trim may have removed some of them first).
		var removed int64
		batch.Queue(stmtDeleteAuditEntries, doomed.revs).Exec(func(tag pgconn.CommandTag) error {
			removed = tag.RowsAffected()
			return nil
		})
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
		n, more = int(removed), doomed.more
		return nil
	})
	return n, more, err
}

// trimmed is one batch of entries TrimAudit removes: their revisions, and
// their terms as (terms[i], termRevs[i]) pairs and their decoded heads,
// or for an entry too corrupt to decode, its revision in corrupt. newestHash is the hash the
// newest of them carries (its value's last 32 bytes, what a write would
// chain to), nil if its value is too short to hold one.
type trimmed struct {
	revs, termRevs, corrupt []int64
	terms                   []string
	entries                 []storage.AuditEntry // those decoded, without their changes
	newestHash              []byte
	more                    bool
}

// readOldestEntries reads up to trimBatch of the oldest entries committed
// before cut, stopping early once their terms reach trimTermBudget.
func readOldestEntries(ctx context.Context, tx pgx.Tx, cut time.Time) (trimmed, error) {
	var t trimmed
	rows, err := tx.Query(ctx, stmtAuditOldest, cut, trimBatch)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	for rows.Next() {
		var rev int64
		var value []byte
		if err := rows.Scan(&rev, &value); err != nil {
			return t, err
		}
		t.revs = append(t.revs, rev)
		t.newestHash = nil
		if n := len(storage.AuditHash{}); len(value) >= n {
			t.newestHash = value[len(value)-n:]
		}
		entry, err := auditlog.DecodeHead(value)
		terms, terr := auditlog.DecodeTerms(value)
		if err != nil || terr != nil || int64(entry.Revision) != rev {
			t.corrupt = append(t.corrupt, rev)
			continue
		}
		for _, term := range terms {
			t.terms = append(t.terms, term)
			t.termRevs = append(t.termRevs, rev)
		}
		t.entries = append(t.entries, entry)
		if len(t.terms) >= trimTermBudget {
			t.more = true
			return t, nil
		}
	}
	t.more = len(t.revs) == trimBatch
	return t, rows.Err()
}
