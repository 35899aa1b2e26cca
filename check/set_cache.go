package check

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/slru"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// setCache keeps the subject sets that set evaluations computed whole
// (not narrowed, see setEval.narrowed), so later lookups at the same
// revision use them instead of computing them again: the sets many
// resources share, such as everyone cleared for a sensitivity tier or
// the members of an org.
//
// Key: (revision, caveat context hash, subject type, object and
// relation); a set that decided no caveat is keyed by "any context"
// instead of the hash. At a fixed revision a set only changes as
// its relationships expire, so an entry computed at instant at is served
// only to evaluations whose "now" lies in [at, expires) (expires: the
// earliest expiration among the relationships read for it, see
// setResult.expires); the caveats it decided depend only on the context,
// which is in the key. Entries are immutable once stored, so any number
// of evaluations may read one.
//
// A narrowed evaluation computes only the subjects it was narrowed to,
// which no other request can reuse; once a node is asked for narrowed
// often enough (setCacheDemand), it is computed whole, once, in the
// background, and cached, with the sets found whole on the way while
// they fit (see setEval.wholeInBackground, putSpare). A node too
// large to compute whole in setWholeTime is remembered and left narrowed
// for setRetryAfter.
//
// The cache is bounded by an estimate of its memory (maxBytes) and
// evicts the least recently used sets, those used only once first (a
// segmented LRU, see slru): one request's sets, computed whole and never
// asked for again, do not push out the sets every lookup uses. It is
// enabled when the engine's result cache is (Config.CacheEntries > 0).
type setCache struct {
	// maxBytes bounds the estimated memory of the cached sets
	// (Config.SetCacheBytes); one set may take a quarter of it.
	maxBytes int64
	// mu guards every field below. Lookups of sets and of dependencies
	// take it shared: on identity-platform ×10 a lookup asks the cache
	// for thousands of sets, and with an exclusive lock eight concurrent
	// lookups spent most of their time waiting for each other.
	mu sync.RWMutex
	// sets holds the cached sets, sized by their estimated memory.
	sets *slru.Cache[setKey, setEntry]
	// demand counts, per node not cached, the narrowed evaluations that
	// wanted it; demandTooLarge marks a node too large to compute whole
	// (until setRetryAfter has passed), demandComputing one an evaluation
	// is computing whole (the others go on narrowed meanwhile).
	demand *simplelru.LRU[setKey, demand]
	// changes, when set, lets a set computed at one revision serve
	// others between which none of the relations below it changed (see
	// Config.Changes): keys then hold no revision, and deps memoizes
	// those relations for depsOf's schema.
	changes Changes
	deps    map[[2]string][][2]string
	depsOf  *schema.Schema
	// counters for Stats: lookups in sets, background computations by
	// outcome, and the sets WarmSets cached.
	hits, misses                                 atomic.Uint64
	computed, tooLarge, failed, deferred, warmed atomic.Uint64
}

// stats adds the cache's counters and size to s.
func (c *setCache) stats(s *Stats) {
	s.SetCacheHits, s.SetCacheMisses = c.hits.Load(), c.misses.Load()
	s.SetsComputed, s.SetsTooLarge, s.SetsFailed, s.SetsDeferred = c.computed.Load(), c.tooLarge.Load(), c.failed.Load(), c.deferred.Load()
	s.SetsWarmed = c.warmed.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets != nil {
		s.SetCacheBytes, s.SetCacheEntries = c.sets.Size(), c.sets.Len()
	}
}

// setKey identifies one cached set (see setCache): anyCtx marks a set
// that decided no caveat, the same in every context (ctx is then 0); rev
// is 0 when the cache tracks changes (the entry holds it).
type setKey struct {
	rev         storage.Revision
	ctx         uint64
	anyCtx      bool
	subjectType string
	n           node
}

// setEntry is a cached set, exact for evaluations at now ∈ [at, until)
// (until 0: no end), at revision rev and, with changes tracked, at any
// revision between which none of deps (type#relation) changed.
type setEntry struct {
	res       setResult
	ids       *subjectIDs // numbered res's subjects
	at, until int64
	rev       storage.Revision
	deps      [][2]string
}

const (
	// setCacheDemand is how many narrowed evaluations must want a node
	// before it is computed whole.
	setCacheDemand = 3
	// setDemandEntries bounds the nodes whose demand is counted: more
	// than one lookup wants at once (the 12,000 teams below a tier's
	// clearance on a large graph), or a node's count is evicted before
	// it reaches setCacheDemand. An entry takes about 250 bytes.
	setDemandEntries = 1 << 16
	// setWholeTime bounds the time a background computation spends on a
	// set whole: long enough for the sets every lookup of a large graph
	// intersects with, which are worth computing once instead of
	// narrowed in every request. Everyone cleared for a tier, half a
	// million subjects through 20,000 nested teams, takes 1.3 s on two
	// busy cores with its teams' rows in memory, but 9–11 s as a
	// restarted server's first computation, reading them from disk while
	// lookups run; at 5 s it ran out of time in most runs, and every
	// lookup then narrowed it for a minute, at half the warm rate. A set
	// that needs more is left narrowed; what an evaluation may hold
	// meanwhile is bounded too (wholeMaxEntries).
	setWholeTime = 30 * time.Second
	// setMemberBytes estimates the memory of one listed subject of a
	// cached set (its index slots and its places in keys and vals;
	// measured 15 bytes at 64 and 1,000 members by
	// TestSetCacheBytesHoldTheHeap), setEndBytes that of a listed
	// subject's until (subjectSet.ends), setUntilBytes that of an
	// unlisted subject's (see subjectSet.until; measured 24–38). Cached
	// sets hold no proofs. setEntryBytes is the fixed part of an entry:
	// its place in the cache's list and map, its key and the set's own
	// struct (measured 450 by TestSetCacheBytesHoldTheHeap); a set that
	// lists anyone has an index of at least setMapMembers slots.
	setMemberBytes = 16
	setUntilBytes  = 40
	setEndBytes    = 8
	setEntryBytes  = 448
	setMapMembers  = 8
)

// setBytes estimates the memory a cached r holds.
func setBytes(r setResult) int64 {
	members := len(r.set.keys)
	if members > 0 {
		members = max(members, setMapMembers)
	}
	return setEntryBytes + int64(members)*setMemberBytes + int64(len(r.set.ends))*setEndBytes + int64(len(r.set.until))*setUntilBytes
}

// init readies the cache; it must be called with c.mu held.
func (c *setCache) init() {
	if c.sets == nil {
		c.sets = slru.New[setKey, setEntry](c.maxBytes)
		c.demand, _ = simplelru.NewLRU[setKey, demand](setDemandEntries, nil)
	}
}

// get returns the set cached for k that is exact at now and rev, with
// its subjects numbered by ids.
func (c *setCache) get(k setKey, now int64, rev storage.Revision, ids *subjectIDs) (setResult, bool) {
	c.mu.RLock()
	var e setEntry
	ok := false
	if c.sets != nil { // else nothing was put yet
		e, ok = c.sets.Peek(k)
	}
	c.mu.RUnlock()
	if !ok || e.ids != ids || now < e.at || (e.until != 0 && now >= e.until) {
		return setResult{}, false
	}
	if e.rev != rev {
		if c.changes == nil {
			return setResult{}, false
		}
		for _, d := range e.deps {
			if !c.changes.Unchanged(e.rev, rev, d[0], d[1]) {
				return setResult{}, false
			}
		}
	}
	c.touch(k)
	return e.res, true
}

// touch marks the set of k used (see slru.Cache.Get), unless another
// goroutine holds the lock: under contention the order of use is kept
// approximately rather than making lookups wait for each other.
func (c *setCache) touch(k setKey) {
	if c.mu.TryLock() {
		c.sets.Get(k)
		c.mu.Unlock()
	}
}

// dependencies returns the relations whose relationships can change the
// set of typ#rel in s (see relationsBelow), memoized for the newest
// schema asked about.
func (c *setCache) dependencies(s *schema.Schema, typ, rel string) [][2]string {
	k := [2]string{typ, rel}
	c.mu.RLock()
	d, ok := c.deps[k]
	ok = ok && c.depsOf == s
	c.mu.RUnlock()
	if ok {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.depsOf != s {
		c.deps, c.depsOf = make(map[[2]string][][2]string), s
	}
	d, ok = c.deps[k]
	if !ok {
		d = relationsBelow(s, typ, rel)
		c.deps[k] = d
	}
	return d
}

// relationsBelow lists the relations (type, relation) whose
// relationships the set of typ#rel is computed from: rel itself when it
// is a relation, with the relations below the subject sets it allows;
// every relation and arrow of its expression when it is a permission.
func relationsBelow(s *schema.Schema, typ, rel string) [][2]string {
	seen := map[[2]string]bool{}
	var out [][2]string
	var visit func(typ, rel string)
	visit = func(typ, rel string) {
		k := [2]string{typ, rel}
		def := s.Definitions[typ]
		if seen[k] || def == nil {
			return
		}
		seen[k] = true
		if p := def.Permissions[rel]; p != nil {
			var expr func(schema.Expr)
			expr = func(x schema.Expr) {
				switch x := x.(type) {
				case *schema.Union:
					for _, c := range x.Children {
						expr(c)
					}
				case *schema.Intersection:
					for _, c := range x.Children {
						expr(c)
					}
				case *schema.Exclusion:
					expr(x.Base)
					expr(x.Subtracted)
				case *schema.RelationRef:
					visit(typ, x.Name)
				case *schema.Arrow:
					visit(typ, x.Tupleset)
					if ts := def.Relations[x.Tupleset]; ts != nil {
						for _, a := range ts.Allowed {
							visit(a.Type, x.Target)
						}
					}
				}
			}
			expr(p.Expr)
			return
		}
		r := def.Relations[rel]
		if r == nil {
			return
		}
		out = append(out, k)
		for _, a := range r.Allowed {
			if a.Relation != "" {
				visit(a.Type, a.Relation)
			}
		}
	}
	visit(typ, rel)
	return out
}

// putKind is how a set came to be computed, which decides how the cache
// keeps it (see put).
type putKind int

const (
	// putOnTheWay: a request computed the set whole on its way; it enters
	// on probation.
	putOnTheWay putKind = iota
	// putWanted: narrowed evaluations asked for the set (see want); it is
	// kept over the sets requests computed on their way.
	putWanted
	// putSpare: a background computation found the set on its way to
	// the ones asked for (a team below a tier's clearance); it is kept,
	// on probation, only while the cache has room for it without
	// evicting anything, so an empty cache fills fast and a full one
	// keeps the sets lookups asked for.
	putSpare
)

// put caches r, computed at now and rev with its subjects numbered by
// ids, for k; deps are the relations below it (see relationsBelow); how
// says how it was computed. It reports whether r was stored. A set a
// lookup computed on its way is dropped when another goroutine holds
// the lock, as the read cache drops a result: a lookup on a large graph
// computes thousands, and waiting to store each held back every lookup
// of the cache behind it. A background computation's sets wait.
func (c *setCache) put(k setKey, r setResult, now int64, rev storage.Revision, ids *subjectIDs, deps [][2]string, how putKind) bool {
	if r.expires != 0 && r.expires <= now {
		return false
	}
	size := setBytes(r)
	if how != putOnTheWay {
		c.mu.Lock()
	} else if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	c.init()
	if size > c.maxBytes/4 {
		if how == putWanted {
			// Lookups go on asking for it: remember it is too large.
			c.demand.Add(k, tooLargeNow(0))
			c.tooLarge.Add(1)
		}
		return false
	}
	old, had := c.sets.Peek(k)
	if had && old.rev > rev {
		return false // keep the newer set: evaluations at the head want it
	}
	if how == putSpare && (had || c.sets.Size()+size > c.maxBytes) {
		return false
	}
	e := setEntry{res: r, ids: ids, at: now, until: r.expires, rev: rev, deps: deps}
	if how == putWanted {
		c.sets.AddUsed(k, e, size)
	} else {
		c.sets.Add(k, e, size)
	}
	c.demand.Remove(k)
	return true
}

// demand is a node's demand: n counts the narrowed evaluations that
// wanted it, or is one of the states below; retry is when a node marked
// too large may be computed again (UnixNano).
type demand struct {
	n     int
	retry int64
}

// The states of a node's demand besides a count.
const (
	demandTooLarge  = -1
	demandComputing = -2
)

// setRetryAfter is how long a node found too large to compute whole is
// left narrowed before a computation is tried again, at least: a
// computation on a busy server, or against a datastore whose pages are
// cold, can run out of time on a set it computes easily later. A node
// whose computation ran out of time waits setRetryFactor times the time
// spent, so a node too large for any server costs a background worker
// at most a fifth of its time.
const (
	setRetryAfter  = time.Minute
	setRetryFactor = 4
)

// tooLargeNow is the demand of a node just found too large, after spent
// computing it.
func tooLargeNow(spent time.Duration) demand {
	return demand{n: demandTooLarge, retry: time.Now().Add(max(setRetryAfter, setRetryFactor*spent)).UnixNano()}
}

// want records that a narrowed evaluation wanted the node of k and
// reports whether it should now compute it whole: it then owns the
// computation, and must end it with put or done. While another
// goroutine holds the lock the want is not counted.
func (c *setCache) want(k setKey) bool {
	if !c.mu.TryLock() {
		// Busy: this evaluation's demand goes uncounted rather than
		// waiting, as a set computed on the way goes unstored (see put).
		return false
	}
	defer c.mu.Unlock()
	c.init()
	d, _ := c.demand.Get(k)
	if d.n == demandTooLarge && time.Now().UnixNano() >= d.retry {
		d = demand{} // counted again from the start
	}
	if d.n < 0 {
		return false
	}
	if d.n++; d.n < setCacheDemand {
		c.demand.Add(k, d)
		return false
	}
	c.demand.Add(k, demand{n: demandComputing})
	return true
}

// done ends a whole computation of the node of k that stored nothing:
// the node was too large (found so after spent), or the computation
// failed (its demand starts over).
func (c *setCache) done(k setKey, tooLarge bool, spent time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	if tooLarge {
		c.demand.Add(k, tooLargeNow(spent))
		return
	}
	if d, _ := c.demand.Peek(k); d.n == demandComputing {
		c.demand.Remove(k)
	}
}

// again undoes want's decision for the node of k, which no one computes
// after all: the next evaluation that wants it computes it.
func (c *setCache) again(k setKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	if d, _ := c.demand.Peek(k); d.n == demandComputing {
		c.demand.Add(k, demand{n: setCacheDemand - 1})
	}
}

// cacheKey is the cache key of typ:id#rel in se, for a set that decided
// a caveat (caveated) or not.
func (se *setEval) cacheKey(typ, id, rel string, caveated bool) setKey {
	k := setKey{anyCtx: true, subjectType: se.subjectType, n: node{typ, id, rel}}
	if se.cache.changes == nil {
		k.rev = se.ev.rev
	}
	if caveated {
		k.ctx, k.anyCtx = se.ev.ctxHash, false
	}
	return k
}

// cached returns the set of typ:id#rel cached for any context or for
// se's.
func (se *setEval) cached(typ, id, rel string) (setResult, bool) {
	r, ok := se.cache.get(se.cacheKey(typ, id, rel, false), se.ev.nowNano, se.ev.rev, se.ids)
	if !ok {
		r, ok = se.cache.get(se.cacheKey(typ, id, rel, true), se.ev.nowNano, se.ev.rev, se.ids)
	}
	if ok {
		se.cache.hits.Add(1)
	} else {
		se.cache.misses.Add(1)
	}
	return r, ok
}

// fromCache answers what it can of pending (the IDs of typ#rel at the
// indexes at of out) from the cache, and returns the IDs left to compute,
// with their indexes. The nodes a narrowed evaluation has wanted often
// enough (see setCache) it also hands to wholeInBackground; this
// evaluation computes them narrowed all the same.
func (se *setEval) fromCache(typ, rel string, depth int, pending []string, at []int, out []setResult) ([]string, []int, error) {
	if se.cache == nil || len(pending) == 0 {
		return pending, at, nil
	}
	var restIDs, wholeIDs []string
	var restAt []int
	for j, id := range pending {
		if r, ok := se.cached(typ, id, rel); ok {
			r.set = se.restrict(r.set)
			out[at[j]] = r
			se.memo[node{typ, id, rel}] = r
			continue
		}
		// Demand is counted across contexts: a set computed whole for
		// one serves all when it decides no caveat.
		if se.only != nil && se.cache.want(se.cacheKey(typ, id, rel, false)) {
			wholeIDs = append(wholeIDs, id)
		}
		restIDs, restAt = append(restIDs, id), append(restAt, at[j])
	}
	if len(wholeIDs) > 0 {
		se.wholeInBackground(typ, rel, wholeIDs, depth)
	}
	return restIDs, restAt, nil
}

// setWholeWorkers bounds the sets computed whole at once, in the
// background, per engine: two, so that a long computation (a tier's
// clearance on a restarted server) does not hold back the many short
// ones lookups wait for meanwhile, and so that on a networked datastore
// one computation's reads overlap the other's work (BENCHMARKS.md, "A
// tier's clearance computed whole on a restarted ×10 server").
const setWholeWorkers = 2

// startWhole takes a slot for a background computation of typ#rel, and
// reports whether it got one: none is free, or one computes typ#rel
// already. Two computations of one relation (two tiers' clearances)
// would compute the same sets below it (their teams) twice at once; the
// second waits for the first, then finds them cached.
func (e *Engine) startWhole(typ, rel string) bool {
	e.wholeMu.Lock()
	defer e.wholeMu.Unlock()
	if len(e.wholeRunning) >= setWholeWorkers || e.wholeRunning[[2]string{typ, rel}] {
		return false
	}
	if e.wholeRunning == nil {
		e.wholeRunning = make(map[[2]string]bool)
	}
	e.wholeRunning[[2]string{typ, rel}] = true
	return true
}

// endWhole ends a background computation of typ#rel begun by startWhole.
func (e *Engine) endWhole(typ, rel string) {
	e.wholeMu.Lock()
	defer e.wholeMu.Unlock()
	delete(e.wholeRunning, [2]string{typ, rel})
}

// wholeMaxEntries bounds the subjects a background computation's sets
// list together (see setEval.maxEntries) per byte of the set cache's
// budget: as many as the cache could hold, so the computation's memory
// stays within a small multiple of the cache's whatever it computes.
func wholeMaxEntries(cacheBytes int64) int {
	return int(max(cacheBytes/setMemberBytes, 1<<16))
}

// wholeInBackground computes the sets of typ#rel on ids whole (not
// narrowed), at se's revision, instant and caveat context, in a
// goroutine of its own, which caches them as it computes them: no
// request waits for a whole set, the request that wanted one last goes
// on narrowed, and the requests after it find it cached, as well as the
// sets below it the computation found whole, while the cache has room
// for them (putSpare). Each computation gets setWholeTime: a set too
// large to compute in it is remembered and left narrowed at this
// revision. When setWholeWorkers computations are already running, or
// one of typ#rel (see startWhole), the nodes are wanted again by the
// next evaluation that needs them.
func (se *setEval) wholeInBackground(typ, rel string, ids []string, depth int) {
	keys := make([]setKey, len(ids))
	for j, id := range ids {
		keys[j] = se.cacheKey(typ, id, rel, false)
	}
	eng, cache := se.ev.eng, se.cache
	if !eng.startWhole(typ, rel) {
		for _, k := range keys {
			cache.again(k)
		}
		cache.deferred.Add(uint64(len(keys)))
		return
	}
	snap := Snapshot{Schema: se.ev.schema, Reader: se.ev.raw}
	caveatCtx, now := se.ev.caveatCtx, se.ev.now
	subjectType, holds, table := se.subjectType, se.holds, se.ids
	go func() {
		defer eng.endWhole(typ, rel)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), setWholeTime)
		defer cancel()
		err := func() error {
			ev, err := eng.newEvaluation(ctx, snap, graph.SubjectRef{}, caveatCtx, now)
			if err != nil {
				return err
			}
			defer eng.release(ev)
			w := &setEval{ev: ev, subjectType: subjectType, holds: holds, ids: table, memo: make(map[node]setResult),
				busy: make(map[node]int), reentered: make(map[node]int), work: new(int), cache: cache, background: true,
				entries: new(int), maxEntries: wholeMaxEntries(cache.maxBytes)}
			res, err := w.batch(typ, rel, ids, depth)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, errSetsTooLarge) {
					return errSetFallback // out of time or memory: too large
				}
				return err
			}
			deps := cache.dependencies(ev.schema, typ, rel)
			for j, id := range ids {
				if cache.put(w.cacheKey(typ, id, rel, res[j].caveated), res[j], ev.nowNano, ev.rev, table, deps, putWanted) {
					cache.computed.Add(1)
				}
				// A set stored for this context (it decided a caveat)
				// leaves the demand for any context to end here.
				if res[j].caveated {
					cache.done(keys[j], false, 0)
				}
			}
			return nil
		}()
		if err != nil {
			tooLarge := errors.Is(err, errSetFallback)
			for _, k := range keys {
				cache.done(k, tooLarge, time.Since(start))
			}
			if tooLarge {
				cache.tooLarge.Add(uint64(len(keys)))
			} else {
				cache.failed.Add(uint64(len(keys)))
			}
		}
	}()
}

// onlyOrdered returns the subjects se is narrowed to, in a stable
// order: as narrowFor met them, or by ID for a window.
func (se *setEval) onlyOrdered() []subjectID {
	if se.onlyList == nil {
		se.onlyList = slices.Collect(maps.Keys(se.only))
		slices.SortFunc(se.onlyList, func(a, b subjectID) int { return strings.Compare(se.ids.name(a), se.ids.name(b)) })
	}
	return se.onlyList
}

// onlySortedNames returns the IDs of the subjects se is narrowed to,
// sorted (the order reads ask for them in), computed once per
// evaluation.
func (se *setEval) onlySortedNames() []string {
	if se.onlyNames == nil {
		list := se.onlyOrdered()
		se.onlyNames = make([]string, len(list))
		for i, id := range list {
			se.onlyNames[i] = se.ids.name(id)
		}
		slices.Sort(se.onlyNames)
	}
	return se.onlyNames
}

// restrict returns s as se's evaluation would have computed it: in a
// narrowed evaluation, only the subjects it is narrowed to are listed
// (a whole set unioned into narrowed ones would make every request pay
// for the whole set again). It costs the smaller of the two sizes, in
// bit tests (see onlyBits) where it walks the set: a lookup restricts
// the cached sets of hundreds of teams, mostly to a handful of subjects.
func (se *setEval) restrict(s *subjectSet) *subjectSet {
	if se.only == nil {
		return s
	}
	out := &subjectSet{def: s.def, defUntil: s.defUntil}
	bits := se.onlyBits()
	if len(s.keys) <= len(se.only) {
		for i, id := range s.keys {
			if bits.has(id) {
				out.add(id, s.vals[i])
				out.setEnd(len(out.keys)-1, s.endAt(i))
			}
		}
	} else {
		// In a stable order: the order a set lists its subjects in is
		// the order a lookup streams them.
		for _, id := range se.onlyOrdered() {
			if i, ok := s.place(id); ok {
				out.add(id, s.vals[i])
				out.setEnd(len(out.keys)-1, s.endAt(int(i)))
			}
		}
	}
	// The untils of the subjects kept that s does not list.
	if len(s.until) <= len(se.only) {
		for id, u := range s.until {
			if bits.has(id) {
				out.setUnlistedUntil(id, u)
			}
		}
	} else {
		for id := range se.only {
			if u, ok := s.until[id]; ok {
				out.setUnlistedUntil(id, u)
			}
		}
	}
	return out
}

// subjectBits is a set of subject numbers, a bit each, from base (a
// multiple of 64) up.
type subjectBits struct {
	base  subjectID
	words []uint64
}

func (b subjectBits) has(id subjectID) bool {
	if id < b.base {
		return false
	}
	w := int((id - b.base) / 64)
	return w < len(b.words) && b.words[w]&(1<<(id%64)) != 0
}

// onlyBits returns se.only as a subjectBits, built once: as many words
// as the span of its numbers needs, at most 256 KiB (numbers stay below
// maxSubjectIDs), cleared in microseconds.
func (se *setEval) onlyBits() subjectBits {
	if se.onlyBitset.words == nil {
		list := se.onlyOrdered()
		lo, hi := ^subjectID(0), subjectID(0)
		for _, id := range list {
			lo, hi = min(lo, id), max(hi, id)
		}
		lo &^= 63
		if len(list) == 0 {
			lo = 0
		}
		b := subjectBits{base: lo, words: make([]uint64, (hi-lo)/64+1)}
		for _, id := range list {
			b.words[(id-lo)/64] |= 1 << (id % 64)
		}
		se.onlyBitset = b
	}
	return se.onlyBitset
}
