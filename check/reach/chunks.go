package reach

import "sync/atomic"

// Shared chunks start at minChunkLen elements, so a small relation costs
// little, and double up to chunkLen; a run longer than an eighth of
// chunkLen gets a chunk of its own.
const (
	minChunkLen = 256
	chunkLen    = 32 << 10
)

// compactAfter is the least dead space, in elements, that makes a chunked
// store compact.
const compactAfter = 1 << 19

// chunked hands out runs of T from large chunks, placed by a pointer-free
// number (chunk << 15 | offset): a million runs are then a few hundred
// objects to the garbage collector instead of a million. Chunks never
// move. An owner whose runs are read after the lock (holders) never
// writes a run once filled: a replaced run stays as dead space (see
// replaced) until the store holds more dead elements than live ones, when
// the owner copies the live runs into a fresh store and adopts it, and the
// old chunks go once nothing holds them. An owner whose runs only its
// writer sees (edge lists) may instead rewrite and reuse them.
//
// The store is its writer's alone, except for the chunk directory, which
// readers load to find a published run's chunk: the writer replaces the
// directory instead of appending to it, so a run it hands out while
// readers read needs no lock.
type chunked[T any] struct {
	dir  atomic.Pointer[[][]T] // the chunks, by number
	fill uint32                // the number of the chunk being filled, plus one (0: none)
	used int                   // elements handed out of it
	next int                   // the length of the next shared chunk
	size int                   // elements in all chunks
	live int                   // elements of the current runs
	dead int                   // elements of replaced runs still in chunks
}

// chunks returns the chunk directory.
func (c *chunked[T]) chunks() [][]T {
	if d := c.dir.Load(); d != nil {
		return *d
	}
	return nil
}

// addChunk publishes a new directory with x at its end and returns x's
// number.
func (c *chunked[T]) addChunk(x []T) uint32 {
	old := c.chunks()
	d := make([][]T, len(old)+1)
	copy(d, old)
	d[len(old)] = x
	c.dir.Store(&d)
	c.size += len(x)
	return uint32(len(old))
}

// alloc returns the place of n zeroed elements that no run uses.
func (c *chunked[T]) alloc(n int) uint32 {
	if n > chunkLen/8 {
		return c.addChunk(make([]T, n)) << 15
	}
	if c.fill == 0 || c.used+n > len(c.chunks()[c.fill-1]) {
		size := max(c.next, minChunkLen, n)
		c.next = min(2*size, chunkLen)
		c.fill = c.addChunk(make([]T, size)) + 1
		c.used = 0
	}
	at := (c.fill-1)<<15 | uint32(c.used)
	c.used += n
	return at
}

// run returns the n elements at place at.
func (c *chunked[T]) run(at uint32, n int) []T {
	off := int(at & (1<<15 - 1))
	return c.chunks()[at>>15][off : off+n : off+n]
}

// copyFrom copies the n elements at place at of another store into this
// one and returns their place here.
func (c *chunked[T]) copyFrom(from *chunked[T], at uint32, n int) uint32 {
	to := c.alloc(n)
	copy(c.run(to, n), from.run(at, n))
	return to
}

// replaced records that a run of n elements took the place of one of old.
func (c *chunked[T]) replaced(old, n int) {
	c.live += n - old
	c.dead += old
}

// wantsCompaction reports whether the store holds more dead elements than
// live ones, and at least compactAfter: replacing runs again and again
// then keeps at most about twice their memory.
func (c *chunked[T]) wantsCompaction() bool { return c.dead >= compactAfter && c.dead > c.live }

// adopt makes fresh, a copy of the live runs, this store.
func (c *chunked[T]) adopt(fresh *chunked[T]) {
	c.dir.Store(fresh.dir.Load())
	c.fill, c.used, c.next, c.size, c.dead = fresh.fill, fresh.used, fresh.next, fresh.size, 0
}

// elements is the number of elements in runs, dead ones included.
func (c *chunked[T]) elements() int { return c.live + c.dead }
