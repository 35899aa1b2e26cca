package dispatch

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Cache is the outermost layer: a bounded cache of shareable answers.
//
// Key: (revision, resource type, resource ID, relation, subject, caveat
// context hash), so an answer is never served for another revision or
// another caveat context. Expirations: an entry remembers the instant it
// was computed at (At) and when its earliest-expiring input relationship
// expires (Until); it serves only requests whose "now" lies in [At, Until).
// At a fixed revision relationships only ever disappear as time passes, so
// within that window every relationship the evaluation read is still
// visible and every one it did not see is still invisible: the answer is
// exactly what a fresh evaluation would give. No time bucketing is needed.
//
// Storage is a set-associative table (see table): random checks on a
// large graph store an answer for nearly every problem they evaluate and
// mostly miss, so a lookup and a store must cost little and not queue
// behind other checks. A general-purpose LRU (a map and a list under one
// lock) spent microseconds per answer there.
type Cache[S any] struct {
	next   Resolver[S]
	t      *table
	hits   atomic.Uint64
	misses atomic.Uint64
}

// entry is a cached answer and the instants [at, until) it is valid in.
type entry struct {
	perm    Permissionship
	missing []string
	at      int64
	until   int64
}

// NewCache returns a cache of at most entries answers in front of next.
func NewCache[S any](next Resolver[S], entries int) (*Cache[S], error) {
	return &Cache[S]{next: next, t: newTable(entries)}, nil
}

// Resolve answers from the cache what it can and asks next for the rest.
func (c *Cache[S]) Resolve(ctx context.Context, scope S, p *Problem, out []Answer) error {
	var missed []int
	for i := range p.ResourceIDs {
		e, ok := c.t.get(KeyOf(p, i), true)
		if ok && e.at <= p.Now && p.Now < e.until {
			out[i] = Answer{Permissionship: e.perm, Missing: e.missing, Low: NoLow, Until: e.until}
			continue
		}
		missed = append(missed, i)
	}
	c.hits.Add(uint64(len(p.ResourceIDs) - len(missed)))
	if len(missed) == 0 {
		return nil
	}
	c.misses.Add(uint64(len(missed)))
	if len(missed) == len(p.ResourceIDs) {
		if err := c.next.Resolve(ctx, scope, p, out); err != nil {
			return err
		}
		for i := range out {
			c.store(p, i, out[i])
		}
		return nil
	}
	q := subProblem(p, missed)
	sub := make([]Answer, len(missed))
	if err := c.next.Resolve(ctx, scope, q, sub); err != nil {
		return err
	}
	for j, i := range missed {
		out[i] = sub[j]
		c.store(q, j, sub[j])
	}
	return nil
}

// store keeps a, the answer for p's i-th ID, if it is Shareable (see
// Frame), still valid at p.Now, and not a peer's (Answer.Remote).
func (c *Cache[S]) store(p *Problem, i int, a Answer) {
	if !a.Shareable() || a.Until <= p.Now || a.Remote {
		return
	}
	c.t.put(KeyOf(p, i), entry{perm: a.Permissionship, missing: a.Missing, at: p.Now, until: a.Until})
}

// Cached returns how many of p's IDs the cache can answer now, without
// counting a hit or refreshing their recency.
func (c *Cache[S]) Cached(p *Problem) int {
	n := 0
	for i := range p.ResourceIDs {
		if e, ok := c.t.get(KeyOf(p, i), false); ok && e.at <= p.Now && p.Now < e.until {
			n++
		}
	}
	return n
}

// Hits returns how many answers the cache served.
func (c *Cache[S]) Hits() uint64 { return c.hits.Load() }

// Misses returns how many answers the cache did not have.
func (c *Cache[S]) Misses() uint64 { return c.misses.Load() }

// Len returns the number of cached answers.
func (c *Cache[S]) Len() int { return c.t.len() }

// table is a fixed-size set-associative cache of answers by Key: a key
// hashes to one set of ways slots and lives in one of them; storing a key
// its set has no room for replaces the set's least recently used slot.
// A small table is one set (an exact LRU). Each set is guarded by one of
// a fixed number of striped locks, held only to compare and copy a few
// slots, so a lookup or a store costs a hash and a short critical section,
// allocates nothing once the set's block exists, and concurrent checks
// seldom meet on a lock. Slots are allocated a block of sets at a time,
// on the first store into the block: an engine that caches little (a
// test's, a short-lived one) costs little.
type table struct {
	blocks []atomic.Pointer[[]slot] // blockSets sets each, nil until stored into
	ways   int
	sets   uint64
	locks  []stripe
	seed   maphash.Seed
}

// slot is one cached answer; hash is its key's, compared before the key;
// used orders a set's slots by last use (0: empty).
type slot struct {
	hash uint64
	used uint64
	key  Key
	e    entry
}

// stripe is a lock and the use counter of the sets it guards, padded to
// its own cache line.
type stripe struct {
	mu   sync.Mutex
	tick uint64
	_    [48]byte
}

// Table geometry: ways slots per set, one set up to oneSet entries, sets
// allocated blockSets at a time, and at most stripes locks.
const (
	ways      = 8
	oneSet    = 64
	blockSets = 8
	stripes   = 256
)

// newTable returns a table of at least entries slots (at least one).
func newTable(entries int) *table {
	entries = max(entries, 1)
	t := &table{seed: maphash.MakeSeed()}
	if entries <= oneSet {
		t.ways, t.sets = entries, 1
	} else {
		t.ways, t.sets = ways, uint64((entries+ways-1)/ways)
	}
	t.blocks = make([]atomic.Pointer[[]slot], (t.sets+blockSets-1)/blockSets)
	t.locks = make([]stripe, min(t.sets, stripes))
	return t
}

// slots returns how many slots the table holds once every block exists.
func (t *table) slots() int { return int(t.sets) * t.ways }

// set returns k's hash, the slots of its set (nil when its block does not
// exist and alloc is false) and the stripe guarding them.
func (t *table) set(k *Key, alloc bool) (uint64, []slot, *stripe) {
	h := maphash.Comparable(t.seed, *k)
	set, st := t.setAt(h%t.sets, alloc)
	return h, set, st
}

// setAt returns set s (nil when its block does not exist and alloc is
// false) and the stripe guarding it.
func (t *table) setAt(s uint64, alloc bool) ([]slot, *stripe) {
	st := &t.locks[s%uint64(len(t.locks))]
	b := &t.blocks[s/blockSets]
	p := b.Load()
	if p == nil {
		if !alloc {
			return nil, st
		}
		first := s / blockSets * blockSets
		fresh := make([]slot, min(blockSets, t.sets-first)*uint64(t.ways))
		if b.CompareAndSwap(nil, &fresh) {
			p = &fresh
		} else {
			p = b.Load()
		}
	}
	off := s % blockSets * uint64(t.ways)
	return (*p)[off : off+uint64(t.ways)], st
}

// get returns k's entry; touch marks it used.
func (t *table) get(k Key, touch bool) (entry, bool) {
	h, set, st := t.set(&k, false)
	if set == nil {
		return entry{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range set {
		if s := &set[i]; s.used != 0 && s.hash == h && s.key == k {
			if touch {
				st.tick++
				s.used = st.tick
			}
			return s.e, true
		}
	}
	return entry{}, false
}

// put stores e under k: in k's slot, an empty one, or the least recently
// used one of its set.
func (t *table) put(k Key, e entry) {
	h, set, st := t.set(&k, true)
	st.mu.Lock()
	defer st.mu.Unlock()
	victim := &set[0]
	for i := range set {
		s := &set[i]
		if s.used != 0 && s.hash == h && s.key == k {
			victim = s
			break
		}
		if s.used < victim.used {
			victim = s
		}
	}
	st.tick++
	*victim = slot{hash: h, used: st.tick, key: k, e: e}
}

// len counts the occupied slots.
func (t *table) len() int {
	n := 0
	for s := range t.sets {
		set, st := t.setAt(s, false)
		if set == nil {
			continue
		}
		st.mu.Lock()
		for i := range set {
			if set[i].used != 0 {
				n++
			}
		}
		st.mu.Unlock()
	}
	return n
}
