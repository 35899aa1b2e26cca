// Package slru is a segmented least-recently-used cache bounded by the
// sizes of its entries rather than their count.
//
// An entry enters on probation and moves to the protected segment the
// first time it is used again; the protected segment holds at most a
// share of the budget, and the entries it pushes out go back on
// probation. Eviction takes the least recently used entry on probation
// first. A stream of entries used once — one large request computing
// thousands of sets no other request asks for — therefore evicts only
// other entries used once, never the few sets every request uses.
//
// A Cache is not safe for concurrent use: its owner guards it.
package slru

import "github.com/hashicorp/golang-lru/v2/simplelru"

// ProtectedShare is the share of the budget the protected segment may
// hold, in percent.
const ProtectedShare = 75

// Cache holds values of type V by key K within a budget of bytes (or of
// any other unit the sizes are given in).
type Cache[K comparable, V any] struct {
	max, protectedMax int64
	// probation and protected are the two segments, each least recently
	// used first; probationSize and protectedSize their total sizes.
	probation, protected         *simplelru.LRU[K, item[V]]
	probationSize, protectedSize int64
}

// item is a value and its size.
type item[V any] struct {
	v    V
	size int64
}

// unbounded is the entry count given to the segments: they are bounded
// by size, not count.
const unbounded = 1 << 30

// New returns an empty cache that holds at most maxSize.
func New[K comparable, V any](maxSize int64) *Cache[K, V] {
	probation, _ := simplelru.NewLRU[K, item[V]](unbounded, nil) // only fails for a non-positive count
	protected, _ := simplelru.NewLRU[K, item[V]](unbounded, nil)
	return &Cache[K, V]{max: maxSize, protectedMax: maxSize / 100 * ProtectedShare, probation: probation, protected: protected}
}

// Get returns the value of k and marks it used: an entry on probation
// is promoted.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if it, ok := c.protected.Get(k); ok {
		return it.v, true
	}
	it, ok := c.probation.Peek(k)
	if !ok {
		var zero V
		return zero, false
	}
	c.probation.Remove(k)
	c.probationSize -= it.size
	c.protect(k, it)
	return it.v, true
}

// protect adds it to the protected segment, newest, and moves the
// oldest protected entries back on probation while the segment is over
// its share.
func (c *Cache[K, V]) protect(k K, it item[V]) {
	c.protected.Add(k, it)
	c.protectedSize += it.size
	for c.protectedSize > c.protectedMax && c.protected.Len() > 1 {
		dk, d, ok := c.protected.RemoveOldest()
		if !ok {
			break
		}
		c.protectedSize -= d.size
		c.probation.Add(dk, d)
		c.probationSize += d.size
	}
}

// Peek returns the value of k without marking it used.
func (c *Cache[K, V]) Peek(k K) (V, bool) {
	if it, ok := c.protected.Peek(k); ok {
		return it.v, true
	}
	it, ok := c.probation.Peek(k)
	return it.v, ok
}

// Add stores v of size for k, on probation, replacing k's value if it
// had one, and evicts the least recently used entries, on probation
// first, until the cache is within its budget. A value larger than the
// whole budget is not stored.
func (c *Cache[K, V]) Add(k K, v V, size int64) { c.add(k, v, size, false) }

// AddUsed is Add for a value known to be wanted again (asked for often
// before it was computed): it goes straight to the protected segment.
func (c *Cache[K, V]) AddUsed(k K, v V, size int64) { c.add(k, v, size, true) }

func (c *Cache[K, V]) add(k K, v V, size int64, used bool) {
	c.Remove(k)
	if size > c.max {
		return
	}
	it := item[V]{v: v, size: size}
	if used {
		c.protect(k, it)
	} else {
		c.probation.Add(k, it)
		c.probationSize += size
	}
	for c.probationSize+c.protectedSize > c.max {
		// The entry just added is the newest of its segment: it goes
		// last.
		seg, segSize := c.probation, &c.probationSize
		if seg.Len() == 0 || (!used && seg.Len() == 1) {
			seg, segSize = c.protected, &c.protectedSize
		}
		_, d, ok := seg.RemoveOldest()
		if !ok {
			break
		}
		*segSize -= d.size
	}
}

// Remove deletes k's entry, if any.
func (c *Cache[K, V]) Remove(k K) {
	if it, ok := c.protected.Peek(k); ok {
		c.protected.Remove(k)
		c.protectedSize -= it.size
	}
	if it, ok := c.probation.Peek(k); ok {
		c.probation.Remove(k)
		c.probationSize -= it.size
	}
}

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int { return c.probation.Len() + c.protected.Len() }

// Size returns the total size of the entries.
func (c *Cache[K, V]) Size() int64 { return c.probationSize + c.protectedSize }
