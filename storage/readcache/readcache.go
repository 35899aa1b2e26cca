package readcache

import (
	"context"
	"fmt"
	"hash/maphash"
	"iter"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/relchanges"
)

// Defaults for a zero Config.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxRows  = 128
)

// Config bounds a Cache. Zero values take the defaults.
type Config struct {
	// MaxBytes bounds the estimated memory of the cached results.
	MaxBytes int64
	// MaxRows is the largest result, in relationships, the cache stores.
	MaxRows int
	// Changes, when set, lets a result read at one revision serve reads
	// at another when its relation did not change in between (see
	// relchanges.Tracker): a write to one relation then leaves the
	// results of every other relation warm. Without it a result serves
	// its own revision only.
	Changes Changes
}

// Changes tells whether the relationships a result depends on changed
// between two revisions; it answers false when it cannot tell. A query of
// one resource (or from one subject) depends on that object's
// relationships of its relation, any other query on the whole relation.
type Changes interface {
	UnchangedIn(from, to storage.Revision, s relchanges.Scope) bool
}

// Cache holds query results of any number of snapshots. It is safe for
// concurrent use.
//
// Key: (revision, forward or reverse, every field of the filter, limit);
// the value remembers the instant it was read at and when its first row
// expires, so it is served only where it is exact (see the package doc).
// With Config.Changes the key leaves out the revision and the value holds
// it: one entry per query, the newest read, serves every revision its
// relation did not change across.
type Cache struct {
	maxRows int
	// changes, when set, relates entries to reads at other revisions (Config.Changes).
	changes Changes
	// shards split the entries by key, each with its own lock and its
	// share of the byte budget: every query of every check passes through
	// here, and with one lock concurrent checks waited for each other.
	shards []cacheShard
	seed   maphash.Seed
	// checkSeed seeds the second hash that, with the first, identifies
	// an empty result in a shard's absentTable.
	checkSeed maphash.Seed

	hits   atomic.Uint64
	misses atomic.Uint64
}

// absentShare: a shard keeps its empty results in a table of 1/absentShare
// of its budget (see absentTable). Half: on identity-platform ×10 the
// halves missed 13–39% fewer reads than a quarter for empty results did,
// and served ×1's checks as well (BENCHMARKS.md, "Half of the read cache
// for empty results").
const absentShare = 2

// shardedFrom is the byte budget from which a cache is split into
// cacheShards shards (a smaller one keeps one, so its bound is exact).
const (
	shardedFrom = 16 << 20
	cacheShards = 16
)

// shard returns the hash of key and the shard holding it.
func (c *Cache) shard(key string) (uint64, *cacheShard) {
	h := c.hash(key)
	return h, &c.shards[c.shardOf(h)]
}

// hash returns the hash that places key in a shard and in its tables.
func (c *Cache) hash(key string) uint64 { return maphash.String(c.seed, key) }

// shardOf returns the index of the shard holding the keys of hash h.
func (c *Cache) shardOf(h uint64) int {
	return int(h % uint64(len(c.shards)))
}

type entry struct {
	rows      []graph.Relationship
	rev       storage.Revision // the revision the rows were read at
	at, until int64            // UnixNano; the result is exact for reads at now ∈ [at, until)
	size      int64
}

// New returns an empty cache bounded by cfg.
func New(cfg Config) *Cache {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxRows <= 0 {
		cfg.MaxRows = DefaultMaxRows
	}
	n := 1
	if cfg.MaxBytes >= shardedFrom {
		n = cacheShards
	}
	c := &Cache{maxRows: cfg.MaxRows, changes: cfg.Changes, shards: make([]cacheShard, n),
		seed: maphash.MakeSeed(), checkSeed: maphash.MakeSeed()}
	per := cfg.MaxBytes / int64(n)
	for i := range c.shards {
		c.shards[i].init(per-per/absentShare, per/absentShare)
	}
	return c
}

// Stats are a cache's counters since New.
type Stats struct {
	Hits, Misses uint64
	Entries      int
	Bytes        int64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	st := Stats{Hits: c.hits.Load(), Misses: c.misses.Load()}
	for i := range c.shards {
		n, b := c.shards[i].stats()
		st.Entries += n
		st.Bytes += b
	}
	return st
}

// Reader returns r with its small queries served from and stored in c.
// Callers must not modify the relationships a cached reader yields: they
// are shared with the cache and with other readers.
func (c *Cache) Reader(r storage.Reader) storage.Reader {
	if c == nil {
		return r
	}
	return &reader{c: c, next: r}
}

type reader struct {
	c    *Cache
	next storage.Reader
}

func (r *reader) Revision() storage.Revision { return r.next.Revision() }

func (r *reader) ReadSchema(ctx context.Context) (storage.StoredSchema, error) {
	return r.next.ReadSchema(ctx)
}

func (r *reader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	if opts.After != nil || f.Validate() != nil || opts.Validate() != nil {
		return r.next.QueryRelationships(ctx, f, opts)
	}
	opts.Now = instant(opts.Now)
	return r.c.through(r.forwardKey(f, opts.Limit), opts, r.next.QueryRelationships(ctx, f, opts))
}

func (r *reader) forwardKey(f storage.Filter, limit int) query {
	return r.key('f', limit, forwardScope(&f), func(b []byte) []byte { return appendForward(b, &f) })
}

// forwardScope is what the result of forward filter f depends on: one
// resource's relationships when it names one, one subject's when it names
// one, and its relation's otherwise.
func forwardScope(f *storage.Filter) relchanges.Scope {
	s := relchanges.Scope{Type: f.ResourceType, Relation: f.Relation}
	switch {
	case len(f.ResourceIDs) == 1:
		s.ID = f.ResourceIDs[0]
	case f.Subject != nil && len(f.Subject.IDs) == 1:
		s.SubjectType, s.ID = f.Subject.Type, f.Subject.IDs[0]
	}
	return s
}

// reverseScope is forwardScope for reverse filter f.
func reverseScope(f *storage.ReverseFilter) relchanges.Scope {
	s := relchanges.Scope{Type: f.ResourceType, Relation: f.Relation}
	if len(f.Subject.IDs) == 1 {
		s.SubjectType, s.ID = f.Subject.Type, f.Subject.IDs[0]
	}
	return s
}

// appendForward appends the fields of forward filter f to a key.
func appendForward(b []byte, f *storage.Filter) []byte {
	b = appendField(b, f.ResourceType)
	b = appendIDs(b, f.ResourceIDs)
	b = appendField(b, f.ResourceIDPrefix)
	b = appendField(b, f.Relation)
	if f.Subject == nil {
		return append(b, 0x02)
	}
	return appendSubject(b, *f.Subject)
}

// QueryRelationshipSlice returns the whole result of a forward query as one
// slice, shared with the cache when it came from there: callers must not
// modify it or append to it. It exists so a caller that keeps whole results
// (the check engine's prefetch) need not copy a cached result row by row.
func (r *reader) QueryRelationshipSlice(ctx context.Context, f storage.Filter, opts storage.QueryOptions) ([]graph.Relationship, error) {
	rows, _, err := r.QueryRelationshipSliceUpTo(ctx, f, opts, math.MaxInt)
	return rows, err
}

// QueryRelationshipSliceUpTo is QueryRelationshipSlice for a caller with a
// budget of max rows: a longer result is not returned (whole is false),
// and at most max+1 of its rows are read. It shares cache entries with
// QueryRelationshipSlice and QueryRelationships.
func (r *reader) QueryRelationshipSliceUpTo(ctx context.Context, f storage.Filter, opts storage.QueryOptions, max int) (rows []graph.Relationship, whole bool, err error) {
	if opts.After != nil || f.Validate() != nil || opts.Validate() != nil {
		return collectUpTo(r.next.QueryRelationships(ctx, f, opts), max)
	}
	opts.Now = instant(opts.Now)
	// Look the query up by its key's bytes; only a miss, which the read
	// then keeps, needs the key as a string of its own.
	var buf [128]byte
	b := r.appendObjectKey(buf[:0], &f, opts.Limit)
	rev := r.next.Revision()
	scope := forwardScope(&f)
	if rows, ok := r.c.get(keyView(b), rev, scope, opts.Now.UnixNano()); ok {
		if len(rows) > max {
			return nil, false, nil
		}
		return rows[:len(rows):len(rows)], true, nil
	}
	rows, whole, err = collectUpTo(r.next.QueryRelationships(ctx, f, opts), max)
	if err != nil || !whole {
		return nil, whole, err
	}
	r.c.keep(query{key: string(b), rev: rev, scope: scope}, opts, rows)
	return rows[:len(rows):len(rows)], true, nil
}

// collectUpTo collects seq unless it has more than max rows. The rows
// are gathered in a recycled buffer and copied out at their exact size:
// a kept result then holds no spare capacity the cache does not count,
// and a read allocates once instead of once per doubling.
func collectUpTo(seq iter.Seq2[graph.Relationship, error], max int) ([]graph.Relationship, bool, error) {
	buf := getRows()
	defer putRows(buf)
	var whole bool
	var err error
	if *buf, whole, err = collectInto((*buf)[:0], seq, max); err != nil || !whole || len(*buf) == 0 {
		return nil, whole, err
	}
	return slices.Clone(*buf), true, nil
}

// collectInto appends seq's rows to rows unless it has more than max.
func collectInto(rows []graph.Relationship, seq iter.Seq2[graph.Relationship, error], max int) ([]graph.Relationship, bool, error) {
	for rel, err := range seq {
		if err != nil {
			return rows, false, err
		}
		if len(rows) == max {
			return rows, false, nil
		}
		rows = append(rows, rel)
	}
	return rows, true, nil
}

// rowBuffers recycles the buffers results are collected in; buffers
// longer than maxPooledRows are left to the collector.
var rowBuffers = sync.Pool{New: func() any { return new([]graph.Relationship) }}

const maxPooledRows = 4096

func getRows() *[]graph.Relationship { return rowBuffers.Get().(*[]graph.Relationship) }

// putRows clears a buffer (its rows hold strings) and recycles it.
func putRows(buf *[]graph.Relationship) {
	clear(*buf)
	if cap(*buf) > maxPooledRows {
		return
	}
	*buf = (*buf)[:0]
	rowBuffers.Put(buf)
}

func (r *reader) ReverseQueryRelationships(ctx context.Context, f storage.ReverseFilter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	if opts.After != nil || f.Validate() != nil || opts.Validate() != nil {
		return r.next.ReverseQueryRelationships(ctx, f, opts)
	}
	opts.Now = instant(opts.Now)
	key := r.key('r', opts.Limit, reverseScope(&f), func(b []byte) []byte {
		b = appendSubject(b, f.Subject)
		b = appendField(b, f.ResourceType)
		return appendField(b, f.Relation)
	})
	return r.c.through(key, opts, r.next.ReverseQueryRelationships(ctx, f, opts))
}

// query is a query at a revision: key identifies it in the cache, and
// scope is what its result depends on (see Changes).
type query struct {
	key   string
	rev   storage.Revision
	scope relchanges.Scope
}

// key encodes a query at r's revision, which is part of the key unless
// the cache tracks changes: then one entry per query serves every
// revision its relation did not change across. Validated names and IDs
// never hold the bytes 0x00–0x02, which separate and mark the fields.
func (r *reader) key(kind byte, limit int, scope relchanges.Scope, fields func([]byte) []byte) query {
	b := r.appendKey(make([]byte, 0, 96), kind, limit)
	return query{key: string(fields(b)), rev: r.next.Revision(), scope: scope}
}

// keyView is a key of b's bytes, not a copy of them: for get, which
// keeps no reference to its key. A miss whose result is kept needs the
// key as a string of its own.
func keyView(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// appendKey appends the start of a key (see key) to b.
func (r *reader) appendKey(b []byte, kind byte, limit int) []byte {
	if r.c.changes == nil {
		b = strconv.AppendUint(b, uint64(r.next.Revision()), 10)
	}
	b = append(b, kind)
	b = strconv.AppendInt(b, int64(limit), 10)
	return append(b, 0)
}

// appendObjectKey appends to b the key forwardKey gives f, a forward
// query (such as one object's rows) of at most limit rows.
func (r *reader) appendObjectKey(b []byte, f *storage.Filter, limit int) []byte {
	return appendForward(r.appendKey(b, 'f', limit), f)
}

func appendField(b []byte, s string) []byte { return append(append(b, s...), 0) }

func appendIDs(b []byte, ids []string) []byte {
	for _, id := range ids {
		b = append(append(b, id...), 0x01)
	}
	return append(b, 0)
}

func appendSubject(b []byte, s storage.SubjectFilter) []byte {
	b = appendField(b, s.Type)
	b = appendIDs(b, s.IDs)
	if s.Relation == nil {
		return append(b, 0x02)
	}
	return appendField(b, *s.Relation)
}

// instant is the expiration clock of a read: t, or the current time.
func instant(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// through serves key from the cache when its entry is exact at opts.Now,
// and otherwise streams src, storing the result if it is small and whole.
func (c *Cache) through(key query, opts storage.QueryOptions, src iter.Seq2[graph.Relationship, error]) iter.Seq2[graph.Relationship, error] {
	now := opts.Now.UnixNano()
	return func(yield func(graph.Relationship, error) bool) {
		if rows, ok := c.get(key.key, key.rev, key.scope, now); ok {
			for _, rel := range rows {
				if !yield(rel, nil) {
					return
				}
			}
			return
		}
		var rows []graph.Relationship
		keep := true
		for rel, err := range src {
			if err != nil {
				yield(rel, err)
				return
			}
			if keep {
				if len(rows) == c.maxRows {
					keep, rows = false, nil
				} else {
					rows = append(rows, rel)
				}
			}
			if !yield(rel, nil) {
				return
			}
		}
		if keep {
			c.keep(key, opts, rows)
		}
	}
}

// get returns the cached result of the query keyed key (at revision rev,
// depending on scope) if it is exact at now and at rev, and counts the
// hit or miss. It keeps no reference to key, which may be a view of a
// caller's buffer (see keyView).
//
// It takes a query's fields apart, not a query, so that key does not
// escape with scope, which an interface call takes: a caller's key
// buffer then stays on its stack instead of being allocated per lookup.
func (c *Cache) get(key string, rev storage.Revision, scope relchanges.Scope, now int64) ([]graph.Relationship, bool) {
	h, sh := c.shard(key)
	// Both candidates are copied under the lock and judged after it: the
	// change tracker is not consulted while the shard is held.
	sh.mu.RLock()
	e, ok := sh.getLocked(key, h)
	live := ok && e.at <= now && now < e.until
	var absentRev storage.Revision
	var absentAt int64
	absentOK := false
	if sh.absent != nil && !(live && e.rev == rev) {
		// An empty result, looked up second: a lookup that finds rows
		// at its revision then costs one random memory access, not two.
		// It may answer where an entry (rows read at another revision)
		// does not.
		absentRev, absentAt, absentOK = sh.absent.get(h, maphash.String(c.checkSeed, key))
	}
	sh.mu.RUnlock()
	if live && c.unchanged(e.rev, rev, scope) {
		c.hits.Add(1)
		return e.rows, true
	}
	if absentOK && absentAt <= now && c.unchanged(absentRev, rev, scope) {
		c.hits.Add(1)
		return noRows, true
	}
	c.misses.Add(1)
	return nil, false
}

// unchanged tells whether a result read at revision from is the result
// at revision to: the same revision, or no change in scope between them.
func (c *Cache) unchanged(from, to storage.Revision, scope relchanges.Scope) bool {
	return from == to || c.changes != nil && c.changes.UnchangedIn(from, to, scope)
}

// keep stores the result rows of key read at opts.Now unless it is too
// long. A result cut short by its limit is the exact answer to its key,
// which holds the limit: a row beyond the limit can only move into the
// result when a returned row disappears, and at a fixed revision that is
// when the returned row expires, which ends the entry's validity.
func (c *Cache) keep(key query, opts storage.QueryOptions, rows []graph.Relationship) {
	if e, ok := c.entryOf(key, opts, rows); ok {
		c.add(key.key, e)
	}
}

// entryOf returns the entry keeping the result rows of key read at
// opts.Now, and false when it is not to be kept (see keep).
func (c *Cache) entryOf(key query, opts storage.QueryOptions, rows []graph.Relationship) (entry, bool) {
	if len(rows) > c.maxRows {
		return entry{}, false
	}
	now, until := opts.Now.UnixNano(), int64(math.MaxInt64)
	for i := range rows {
		if x := rows[i].Expiration; x != nil {
			until = min(until, x.UnixNano())
		}
	}
	if now >= until {
		return entry{}, false
	}
	return entry{rows: rows, rev: key.rev, at: now, until: until, size: entrySize(key.key, rows)}, true
}

// entryOverhead estimates the slot, index entry and headers of one entry
// (a slot and its state take 84 bytes); rowOverhead the fixed part of one relationship.
// TestKeptRowsHoldOnlyThemselves compares the estimate with the heap.
const (
	entryOverhead = 104
	rowOverhead   = 6*16 + 2*8
)

// entrySize estimates the memory of the entry of key holding rows.
func entrySize(key string, rows []graph.Relationship) int64 {
	size := entryOverhead + int64(len(key))
	for i := range rows {
		r := &rows[i]
		size += rowOverhead + int64(len(r.Resource.Type)+len(r.Resource.ID)+len(r.Relation)+
			len(r.Subject.Object.Type)+len(r.Subject.Object.ID)+len(r.Subject.Relation))
		if r.Expiration != nil {
			size += 24
		}
		if r.Caveat != nil {
			size += 64 + int64(len(r.Caveat.Name)) + 64*int64(len(r.Caveat.Context))
		}
	}
	return size
}

// add stores e, whose size is set, under key, unless another goroutine
// holds the shard's lock (see addAll).
func (c *Cache) add(key string, e entry) {
	h, sh := c.shard(key)
	if !sh.mu.TryLock() {
		return
	}
	defer sh.mu.Unlock()
	c.addLocked(sh, key, h, e)
}

// addLocked is add for a caller holding sh's exclusive lock, sh being
// the shard of key, whose hash is h.
func (c *Cache) addLocked(sh *cacheShard, key string, h uint64, e entry) {
	if len(e.rows) == 0 && sh.absent != nil {
		// An empty result never expires: e.until is math.MaxInt64.
		sh.absent.put(h, maphash.String(c.checkSeed, key), e.rev, e.at)
		return
	}
	if e.size > sh.maxBytes {
		return
	}
	sh.putLocked(key, h, e)
}

// keptEntry is an entry on its way into the cache (see addAll).
type keptEntry struct {
	key   string
	hash  uint64
	shard int
	e     entry
}

// addAll stores the entries of a read of many objects, trying each
// shard's lock once for all of them that it holds; a busy shard's are
// dropped, as add drops one. A prefetch keeps hundreds of results at
// once: on a large graph, where most are misses, a lock per result kept
// the shards' readers waiting behind the writers.
func (c *Cache) addAll(kept []keptEntry) {
	for i := range kept {
		k := &kept[i]
		k.hash = c.hash(k.key)
		k.shard = c.shardOf(k.hash)
	}
	slices.SortFunc(kept, func(a, b keptEntry) int { return a.shard - b.shard })
	for start := 0; start < len(kept); {
		sh := &c.shards[kept[start].shard]
		end := start
		for end < len(kept) && kept[end].shard == kept[start].shard {
			end++
		}
		if sh.mu.TryLock() {
			for _, k := range kept[start:end] {
				c.addLocked(sh, k.key, k.hash, k.e)
			}
			sh.mu.Unlock()
		}
		start = end
	}
}

// QueryObjects reads the relationships of the objects ids of type typ,
// every relation, at most perObject of each, as the check engine's
// prefetch wants them: an object whose own query (Filter{ResourceType:
// typ, ResourceIDs: {id}}, Limit perObject) is cached is served from
// there, and the others are read with one query and each kept as its own
// query's result. A batch of objects thus shares the rows of the objects
// many batches name (the folders near a tree's root, a popular group)
// though the batches themselves differ. rows[i] holds ids[i]'s rows: with
// perObject of them the object may have more, with fewer it has no more,
// and nil means the shared query's limit cut them off before perObject.
// The slices are shared with the cache: callers must not modify them.
func (r *reader) QueryObjects(ctx context.Context, typ string, ids []string, perObject int, opts storage.QueryOptions) (rows [][]graph.Relationship, err error) {
	if perObject <= 0 {
		return nil, fmt.Errorf("%w: QueryObjects takes a positive perObject", storage.ErrInvalidArgument)
	}
	return r.queryObjects(ctx, typ, "", ids, perObject, 0, opts)
}

// QueryRelationObjects is QueryObjects for one relation, whole: rows[i]
// holds every relationship of ids[i]#rel, served from the object's own
// query (Filter{ResourceType: typ, ResourceIDs: {id}, Relation: rel}) when
// that is cached, and each read kept as its own query's result when it
// is small enough. Set evaluation reads a relation of a batch of objects
// this way: the batches differ from lookup to lookup, the objects (a
// tier's cleared teams, an org's sub-orgs) recur.
func (r *reader) QueryRelationObjects(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions) (rows [][]graph.Relationship, err error) {
	if rel == "" {
		return nil, fmt.Errorf("%w: QueryRelationObjects needs a relation", storage.ErrInvalidArgument)
	}
	return r.queryObjects(ctx, typ, rel, ids, 0, 0, opts)
}

// QueryRelationObjectsUpTo is QueryRelationObjects for a caller with a
// budget of max rows in all (positive): its one query reads at most max
// rows, and an object it may have cut short is left out (rows[i] nil),
// neither returned nor kept. Expand warms the cache this way with the
// relation an arrow reaches on each object of a tupleset.
func (r *reader) QueryRelationObjectsUpTo(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions, max int) (rows [][]graph.Relationship, err error) {
	if rel == "" || max <= 0 {
		return nil, fmt.Errorf("%w: QueryRelationObjectsUpTo needs a relation and a positive budget", storage.ErrInvalidArgument)
	}
	return r.queryObjects(ctx, typ, rel, ids, 0, max, opts)
}

// queryObjects reads the rows of typ#rel (every relation when rel is
// empty) on each of ids, at most perObject of each (0: all) and, when
// perObject is 0, at most maxRows in all (0: no bound), object by object
// through the cache (see QueryObjects).
func (r *reader) queryObjects(ctx context.Context, typ, rel string, ids []string, perObject, maxRows int, opts storage.QueryOptions) (rows [][]graph.Relationship, err error) {
	if err := (storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: rel}).Validate(); err != nil {
		return nil, err
	}
	if opts.After != nil || opts.Limit != 0 {
		return nil, fmt.Errorf("%w: reading objects one by one takes no cursor or limit", storage.ErrInvalidArgument)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Now = instant(opts.Now)
	now := opts.Now.UnixNano()
	rows = make([][]graph.Relationship, len(ids))
	keys := make([]query, len(ids))
	var missing []string
	var missingAt []int
	rev := r.next.Revision()
	var buf [128]byte
	for i, id := range ids {
		// Look the object up by its key's bytes; only a miss, which the
		// read then keeps, needs the key as a string of its own.
		b := r.appendObjectKey(buf[:0], &storage.Filter{ResourceType: typ, ResourceIDs: ids[i : i+1 : i+1], Relation: rel}, perObject)
		scope := relchanges.Scope{Type: typ, Relation: rel, ID: id}
		if got, ok := r.c.get(keyView(b), rev, scope, now); ok {
			rows[i] = got[:len(got):len(got)]
			continue
		}
		keys[i] = query{key: string(b), rev: rev, scope: scope}
		missing, missingAt = append(missing, id), append(missingAt, i)
	}
	if len(missing) == 0 {
		return rows, nil
	}
	limit := perObject * len(missing)
	if perObject == 0 {
		limit = maxRows
	}
	q := opts
	q.Limit = limit
	// The rows are read into a recycled buffer and each object's kept
	// rows copied out: sub-slices of one array would keep all of it alive
	// until the last of them left the cache.
	rowBuf := getRows()
	defer putRows(rowBuf)
	*rowBuf, _, err = collectInto((*rowBuf)[:0], r.next.QueryRelationships(ctx, storage.Filter{ResourceType: typ, ResourceIDs: missing, Relation: rel}, q), math.MaxInt)
	if err != nil {
		return nil, err
	}
	read := *rowBuf
	// Rows come in resource ID order, so each object's rows are a run; an
	// object is complete unless the limit may have cut it.
	last := ""
	if len(read) > 0 {
		last = read[len(read)-1].Resource.ID
	}
	complete := func(id string) bool { return limit == 0 || len(read) < limit || id < last }
	runs := make(map[string][]graph.Relationship, len(missing))
	for start := 0; start < len(read); {
		end := start + 1
		for end < len(read) && read[end].Resource.ID == read[start].Resource.ID {
			end++
		}
		runs[read[start].Resource.ID] = read[start:end:end]
		start = end
	}
	single := opts
	single.Limit = perObject
	kept := make([]keptEntry, 0, len(missing))
	for j, id := range missing {
		run := runs[id]
		switch {
		case perObject > 0 && len(run) >= perObject:
			// The run begins the object's rows, cut or not: its first
			// perObject are what the object's own query returns.
			run = run[:perObject:perObject]
		case !complete(id):
			continue
		case run == nil:
			run = []graph.Relationship{}
		}
		run = slices.Clone(run)
		i := missingAt[j]
		rows[i] = run
		if e, ok := r.c.entryOf(keys[i], single, run); ok {
			kept = append(kept, keptEntry{key: keys[i].key, e: e})
		}
	}
	r.c.addAll(kept)
	return rows, nil
}
