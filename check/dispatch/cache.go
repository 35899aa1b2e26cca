package dispatch

import (
	"context"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache is the outermost layer: a bounded LRU of shareable answers.
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
type Cache[S any] struct {
	next   Resolver[S]
	lru    *lru.Cache[Key, entry] // safe for concurrent use
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
	l, err := lru.New[Key, entry](entries)
	if err != nil {
		return nil, err
	}
	return &Cache[S]{next: next, lru: l}, nil
}

// Resolve answers from the cache what it can and asks next for the rest.
func (c *Cache[S]) Resolve(ctx context.Context, scope S, p *Problem, out []Answer) error {
	var missed []int
	for i := range p.ResourceIDs {
		e, ok := c.lru.Get(KeyOf(p, i))
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
	c.lru.Add(KeyOf(p, i), entry{perm: a.Permissionship, missing: a.Missing, at: p.Now, until: a.Until})
}

// Cached returns how many of p's IDs the cache can answer now, without
// counting a hit or refreshing their recency.
func (c *Cache[S]) Cached(p *Problem) int {
	n := 0
	for i := range p.ResourceIDs {
		if e, ok := c.lru.Peek(KeyOf(p, i)); ok && e.at <= p.Now && p.Now < e.until {
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
func (c *Cache[S]) Len() int { return c.lru.Len() }
