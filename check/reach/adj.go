package reach

// edge is one direct relationship of an indexed relation, seen from one
// end: the node at the other end and when the relationship expires (unix
// nanoseconds, Never for one that does not).
type edge struct {
	to  uint32
	exp int64
}

// adjIndexAt is the degree from which a node's edges are found through a
// map instead of a linear scan, so removing from a large group stays
// cheap.
const adjIndexAt = 32

// adj is the direct edges of one node, kept in the edgeStore of its
// relation: a list of fewer than adjIndexAt edges is a slot of one of the
// store's chunks, a longer one a bigList of its own. An adj holds no
// pointer, so the garbage collector neither scans the millions of them in
// a large index nor marks an object per node: it sees the store's few
// chunks.
type adj struct {
	at  uint32 // a slot's place in the store's chunks, or a bigList's index
	n   uint16 // edges in the slot
	cls uint8  // the slot holds 1<<cls edges
	big bool   // the edges are the bigList bigs[at]
}

// adjBytes is the size of an adj.
const adjBytes = 8

// slotClasses is the number of slot sizes: 1, 2, 4, … adjIndexAt edges.
const slotClasses = 6

// bigList is the edges of a node with adjIndexAt or more, and each
// edge's position in them.
type bigList struct {
	list []edge
	pos  map[uint32]int32
}

// edgeStore holds the edge lists of one relation's nodes. Slots are
// handed out of chunks (see chunked) and reused once freed; a slice it
// returns aliases a slot and stays valid until the node's next change.
// Like the nodes, the store is its writer's alone, or read and written
// under the index's lock.
type edgeStore struct {
	slots    chunked[edge]
	free     [slotClasses][]uint32
	bigs     []bigList
	freeBigs []uint32
	bigSize  int // bytes of the big lists
}

// slot returns the edges of the slot at at of class cls.
func (p *edgeStore) slot(at uint32, cls uint8) []edge { return p.slots.run(at, 1<<cls) }

// alloc returns a free slot of class cls.
func (p *edgeStore) alloc(cls uint8) uint32 {
	if f := p.free[cls]; len(f) > 0 {
		at := f[len(f)-1]
		p.free[cls] = f[:len(f)-1]
		return at
	}
	return p.slots.alloc(1 << cls)
}

// release returns a slot to the free slots of its class.
func (p *edgeStore) release(at uint32, cls uint8) {
	clear(p.slot(at, cls))
	p.free[cls] = append(p.free[cls], at)
}

// edges returns a's edges.
func (p *edgeStore) edges(a adj) []edge {
	switch {
	case a.big:
		return p.bigs[a.at].list
	case a.n == 0:
		return nil
	}
	return p.slot(a.at, a.cls)[:a.n]
}

// find returns the index of a's edge to n in edges(a), or -1.
func (p *edgeStore) find(a adj, n uint32) int {
	if a.big {
		if i, ok := p.bigs[a.at].pos[n]; ok {
			return int(i)
		}
		return -1
	}
	for i, e := range p.edges(a) {
		if e.to == n {
			return i
		}
	}
	return -1
}

// set adds or replaces a's edge to n; it reports whether the edge is
// new.
func (p *edgeStore) set(a *adj, n uint32, exp int64) bool {
	if i := p.find(*a, n); i >= 0 {
		p.edges(*a)[i].exp = exp
		return false
	}
	e := edge{n, exp}
	switch {
	case a.big:
		b := &p.bigs[a.at]
		p.bigSize -= cap(b.list) * 16
		b.list = append(b.list, e)
		p.bigSize += cap(b.list)*16 + 16
		b.pos[n] = int32(len(b.list) - 1)
	case a.n == 0:
		*a = adj{at: p.alloc(0), n: 1}
		p.slot(a.at, 0)[0] = e
	case int(a.n)+1 >= adjIndexAt:
		b := bigList{list: make([]edge, 0, 2*adjIndexAt), pos: make(map[uint32]int32, 2*adjIndexAt)}
		b.list = append(append(b.list, p.edges(*a)...), e)
		for i, e := range b.list {
			b.pos[e.to] = int32(i)
		}
		p.release(a.at, a.cls)
		p.bigSize += cap(b.list)*16 + len(b.pos)*16
		*a = adj{at: p.newBig(b), big: true}
	default:
		if int(a.n) == 1<<a.cls {
			at := p.alloc(a.cls + 1)
			copy(p.slot(at, a.cls+1), p.edges(*a))
			p.release(a.at, a.cls)
			a.at, a.cls = at, a.cls+1
		}
		p.slot(a.at, a.cls)[a.n] = e
		a.n++
	}
	return true
}

// newBig stores b and returns its index.
func (p *edgeStore) newBig(b bigList) uint32 {
	if f := p.freeBigs; len(f) > 0 {
		at := f[len(f)-1]
		p.freeBigs = f[:len(f)-1]
		p.bigs[at] = b
		return at
	}
	p.bigs = append(p.bigs, b)
	return uint32(len(p.bigs) - 1)
}

// remove deletes a's edge to n; it reports whether there was one. The
// last edge takes the removed one's place.
func (p *edgeStore) remove(a *adj, n uint32) bool {
	i := p.find(*a, n)
	if i < 0 {
		return false
	}
	if a.big {
		b := &p.bigs[a.at]
		last := len(b.list) - 1
		b.list[i] = b.list[last]
		b.list = b.list[:last]
		delete(b.pos, n)
		p.bigSize -= 16
		if i != last {
			b.pos[b.list[i].to] = int32(i)
		}
		if last == 0 {
			p.bigSize -= cap(b.list) * 16
			p.bigs[a.at] = bigList{}
			p.freeBigs = append(p.freeBigs, a.at)
			*a = adj{}
		}
		return true
	}
	es := p.edges(*a)
	last := len(es) - 1
	es[i] = es[last]
	es[last] = edge{}
	if a.n--; a.n == 0 {
		p.release(a.at, a.cls)
		*a = adj{}
	}
	return true
}

// bytes estimates the store's memory: its chunks, and its big lists
// with their position maps.
func (p *edgeStore) bytes() int { return p.slots.size*16 + p.bigSize + cap(p.bigs)*32 }
