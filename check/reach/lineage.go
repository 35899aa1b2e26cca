package reach

import (
	"cmp"
	"slices"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// tree is the index of one parent relation typ#rel (see Parental): each
// object's direct parents with their expirations. Ancestors are found by
// following it up in memory at question time: parent chains are short
// (a folder tree of ten thousand folders is ten levels deep), so holding
// the edges alone answers as fast as a flattened set would, keeps every
// chain's expiration exact, costs no recomputation when a folder moves,
// and takes a fraction of the memory.
//
// An inverted tree (see StepKeys) holds the same edges the other way:
// each object's referrers, the objects whose relation names it.
//
// Everything in a tree is read and written under the index's lock.
type tree struct {
	key Key
	// inverse: an edge leads from a relationship's subject to its
	// resource.
	inverse bool
	// since is the revision of the last change to the relation (or of
	// the build's snapshot): the tree holds at every revision from since
	// up to the index's applied revision.
	since   storage.Revision
	objects names[string]
	up      []adj // by object: its parents
	store   edgeStore
	edges   int
	// odd holds the stored relationships the tree cannot represent: with
	// a caveat, a subject set or a subject of another type, which the
	// schema does not allow but old data may carry. While any is stored
	// the tree answers nothing.
	odd       map[graph.Key]struct{}
	nameBytes int
}

func newTree(k Key) *tree { return &tree{key: k, odd: make(map[graph.Key]struct{})} }

// object returns the number of object id, growing the per-object slices.
func (t *tree) object(id string) uint32 {
	n := t.objects.len()
	x := t.objects.intern(id)
	if t.objects.len() > n {
		t.up = append(t.up, adj{})
		t.nameBytes += len(id) + objectOverhead
	}
	return x
}

// change applies a touch (del false) or delete of relationship r of the
// tree's relation.
func (t *tree) change(r graph.Relationship, del bool) {
	k := r.Key()
	delete(t.odd, k)
	edge := r.Subject.Relation == "" && r.Subject.Object.Type == t.key.Type
	if !del && (!edge || r.Caveat != nil) {
		t.odd[k] = struct{}{}
	}
	if !edge {
		return
	}
	from, to := r.Resource.ID, r.Subject.Object.ID
	if t.inverse {
		from, to = to, from
	}
	if del || r.Caveat != nil {
		c, ok := t.objects.lookup(from)
		p, ok2 := t.objects.lookup(to)
		if ok && ok2 && t.store.remove(&t.up[c], p) {
			t.edges--
		}
		return
	}
	exp := Never
	if r.Expiration != nil {
		exp = r.Expiration.UnixNano()
	}
	// Both numbers first: numbering a new object grows t.up.
	c, p := t.object(from), t.object(to)
	if t.store.set(&t.up[c], p, exp) {
		t.edges++
	}
}

// bytes estimates the tree's memory: names, a list header per object
// and an edge's 16 bytes with the slack of growing lists (parent lists
// are short: few objects have more than one parent).
func (t *tree) bytes() int { return t.nameBytes + cap(t.up)*adjBytes + t.store.bytes() }

// Lineage is what Index.Ancestors answers: a set of objects and their
// parents, closed upward.
type Lineage struct {
	// IDs are the objects asked about, in the order asked, then each of
	// their ancestors once.
	IDs []string
	// Up holds, by position in IDs, the object's parents whose
	// relationship has not expired: positions in IDs, sorted by ID (the
	// order the datastore returns them in).
	Up [][]Step
	// Depth is the length of the longest chain of parents above an
	// object asked about.
	Depth int
}

// Step is an edge to a parent: its position in Lineage.IDs and until
// when the relationship holds (Never for good).
type Step struct {
	To    int32
	Until int64
}

// lineage follows t up from ids, keeping the edges unexpired at now. It
// declines (ok false) past limit objects, and for a cycle: the walk
// answers those, with its frames.
func (t *tree) lineage(ids []string, now int64, limit int) (Lineage, bool) {
	// A chain of folders is short: the objects are found by a scan until
	// there are more than a few, then by a map.
	const scanned = 16
	l := Lineage{IDs: make([]string, len(ids), len(ids)+scanned), Up: make([][]Step, len(ids), len(ids)+scanned)}
	copy(l.IDs, ids)
	var pos map[string]int32
	find := func(id string) (int32, bool) {
		if pos == nil && len(l.IDs) > scanned {
			pos = make(map[string]int32, 2*len(l.IDs))
			for i, id := range l.IDs {
				if _, dup := pos[id]; !dup {
					pos[id] = int32(i)
				}
			}
		}
		if pos != nil {
			p, ok := pos[id]
			return p, ok
		}
		p := slices.Index(l.IDs, id)
		return int32(p), p >= 0
	}
	var buf []Step // every object's steps, carved from one array
	for i := 0; i < len(l.IDs); i++ {
		x, known := t.objects.lookup(l.IDs[i])
		if !known {
			continue
		}
		start := len(buf)
		for _, e := range t.store.edges(t.up[x]) {
			if e.exp <= now {
				continue
			}
			id := t.objects.name(e.to)
			p, seen := find(id)
			if !seen {
				if len(l.IDs) >= limit {
					return Lineage{}, false
				}
				p = int32(len(l.IDs))
				if pos != nil {
					pos[id] = p
				}
				l.IDs = append(l.IDs, id)
				l.Up = append(l.Up, nil)
			}
			if buf == nil {
				buf = make([]Step, 0, len(ids)+scanned)
			}
			buf = append(buf, Step{To: p, Until: e.exp})
		}
		steps := buf[start:len(buf):len(buf)]
		if len(steps) > 1 {
			slices.SortFunc(steps, func(a, b Step) int { return cmp.Compare(l.IDs[a.To], l.IDs[b.To]) })
		}
		if len(steps) > 0 {
			l.Up[i] = steps
		}
	}
	depth, ok := longest(l.Up)
	if !ok {
		return Lineage{}, false
	}
	for i := range ids {
		l.Depth = max(l.Depth, int(depth[i]))
	}
	return l, true
}

// longest returns, for each node of the graph up, the length of the
// longest chain above it; ok is false when the graph has a cycle.
func longest(up [][]Step) (depth []int32, ok bool) {
	const (
		unseen = iota
		open
		done
	)
	state := make([]uint8, len(up))
	depth = make([]int32, len(up))
	type frame struct{ n, next int32 }
	var stack []frame
	for root := range up {
		if state[root] != unseen {
			continue
		}
		state[root] = open
		stack = append(stack[:0], frame{int32(root), 0})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if int(f.next) == len(up[f.n]) {
				state[f.n] = done
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					parent := stack[len(stack)-1].n
					depth[parent] = max(depth[parent], depth[f.n]+1)
				}
				continue
			}
			to := up[f.n][f.next].To
			f.next++
			switch state[to] {
			case open:
				return nil, false
			case done:
				depth[f.n] = max(depth[f.n], depth[to]+1)
			default:
				state[to] = open
				stack = append(stack, frame{to, 0})
			}
		}
	}
	return depth, true
}
