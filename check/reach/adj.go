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

// adj is the direct edges of one node. Small lists are scanned; larger
// ones keep a position map (pos), updated as edges move.
type adj struct {
	list []edge
	pos  map[uint32]int32 // nil below adjIndexAt edges
}

// find returns the index of the edge to n, or -1.
func (a *adj) find(n uint32) int {
	if a.pos != nil {
		if i, ok := a.pos[n]; ok {
			return int(i)
		}
		return -1
	}
	for i, e := range a.list {
		if e.to == n {
			return i
		}
	}
	return -1
}

// set adds or replaces the edge to n; it reports whether the edge is new.
func (a *adj) set(n uint32, exp int64) bool {
	if i := a.find(n); i >= 0 {
		a.list[i].exp = exp
		return false
	}
	a.list = append(a.list, edge{n, exp})
	switch {
	case a.pos != nil:
		a.pos[n] = int32(len(a.list) - 1)
	case len(a.list) >= adjIndexAt:
		a.pos = make(map[uint32]int32, len(a.list))
		for i, e := range a.list {
			a.pos[e.to] = int32(i)
		}
	}
	return true
}

// remove deletes the edge to n; it reports whether there was one.
func (a *adj) remove(n uint32) bool {
	i := a.find(n)
	if i < 0 {
		return false
	}
	last := len(a.list) - 1
	a.list[i] = a.list[last]
	a.list = a.list[:last]
	if a.pos != nil {
		delete(a.pos, n)
		if i != last {
			a.pos[a.list[i].to] = int32(i)
		}
	}
	if len(a.list) == 0 {
		a.list = nil
	}
	return true
}

// bytes estimates the memory the edges use.
func (a *adj) bytes() int {
	n := cap(a.list) * 16
	if a.pos != nil {
		n += len(a.pos) * 16
	}
	return n
}
