package check

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
)

// accessGraph is what one access walk learned: the objects it reached
// (object#relation, or a plain subject with relation ""), the shortest
// way it reached each, and every granting edge it crossed. The walk
// starts at one node (the root, index 0) and goes breadth first.
//
// An edge grants when its relationship is live and its caveat is not
// false for the request's context. A node is clean when some chain of
// edges whose caveats are all true (or absent) reaches it; its parent is
// then the node before it on a shortest such chain, otherwise on a
// shortest chain of any granting edges.
//
// For a monotone permission (see monotoneFrom) this is the whole story:
// a clean node holds the permission over the root (or the root over it)
// unconditionally, a node reached only otherwise conditionally, and
// at instant t a node holds it iff some chain of edges all live at t
// reaches it. So the access ends at the largest, over the chains, of the
// earliest expiration on the chain: a widest-path problem (ends).
type accessGraph struct {
	index map[node]int32
	nodes []graphNode
	// edges holds every granting edge crossed, for ends; expiring says
	// whether any of them expires (if none does, nothing ends).
	edges    []graphEdge
	expiring bool
	// max bounds the nodes; full records that a node was left out
	// because of it, which fails the walk (see err).
	max  int
	full bool
}

// graphNode is one node of an accessGraph.
type graphNode struct {
	n node
	// level is the breadth-first level at which the node was last
	// queued: first reached, or reached clean.
	level int32
	clean bool
	// first is the edge by which the node was first reached (the last
	// edge of a shortest chain of granting edges), best the edge of a
	// shortest clean chain when the node is clean.
	first, best graphStep
}

// graphStep is an edge into a node: from parent (-1 for the root), over
// the relationship crossed (nil for a permission computed from a
// relation of the same object), by way of the arrow walked, if any.
type graphStep struct {
	parent int32
	rship  *graph.Relationship
	via    string
}

// graphEdge is a granting edge: until is when its relationship expires
// (dispatch.Never if it does not).
type graphEdge struct {
	from, to int32
	until    int64
}

func newAccessGraph(root node, max int) *accessGraph {
	g := &accessGraph{index: map[node]int32{root: 0}, max: max}
	none := graphStep{parent: -1}
	g.nodes = append(g.nodes, graphNode{n: root, clean: true, first: none, best: none})
	return g
}

// reach records the edge from node from to n, crossing rship (nil for a
// schema step) by way of arrow via; clean says whether the chain up to
// and including this edge is clean. It returns n's index and whether n
// must be expanded: it was not reached before, or was but not clean and
// now is.
func (g *accessGraph) reach(from int32, n node, clean bool, rship *graph.Relationship, via string) (int32, bool) {
	until := int64(dispatch.Never)
	if rship != nil && rship.Expiration != nil {
		until = rship.Expiration.UnixNano()
		g.expiring = true
	}
	i, seen := g.index[n]
	if !seen {
		if len(g.nodes) >= g.max {
			g.full = true
			return 0, false
		}
		i = int32(len(g.nodes))
		g.index[n] = i
		step := graphStep{parent: from, rship: rship, via: via}
		g.nodes = append(g.nodes, graphNode{n: n, level: g.nodes[from].level + 1, clean: clean, first: step, best: step})
	}
	g.edges = append(g.edges, graphEdge{from: from, to: i, until: until})
	if !seen {
		return i, true
	}
	x := &g.nodes[i]
	if clean && !x.clean {
		x.clean, x.best = true, graphStep{parent: from, rship: rship, via: via}
		x.level = g.nodes[from].level + 1
		return i, true
	}
	return i, false
}

// err reports a walk that outgrew its bound.
func (g *accessGraph) err() error {
	if g.full {
		return fmt.Errorf("%w: more than %d objects (MaxAccessObjects)", ErrAccessTooLarge, g.max)
	}
	return nil
}

// step returns the edge into node i on the path chosen for it: a
// shortest clean chain when clean is set (the node must be clean), else
// a shortest chain of granting edges. Following either kind of edge back
// lowers the level at which the node was reached, so a chain ends at the
// root.
func (g *accessGraph) step(i int32, clean bool) graphStep {
	if clean {
		return g.nodes[i].best
	}
	return g.nodes[i].first
}

// pathDown returns the chain of the evaluator (see pathNode) that goes
// from the root down to node i, for a walk from the resource to the
// subject (forward: node i is the subject the last edge names); clean
// chooses the path (see step).
func (g *accessGraph) pathDown(i int32, clean bool) *pathNode {
	var next *pathNode
	for x := i; x != 0; {
		st := g.step(x, clean)
		p := &g.nodes[st.parent]
		next = &pathNode{obj: graph.ObjectRef{Type: p.n.typ, ID: p.n.id}, rel: p.n.rel, via: st.via, rship: st.rship, next: next}
		x = st.parent
	}
	return next
}

// pathUp returns the chain of the evaluator that goes from node i (a
// resource) down to the root, for a walk from the subject up to the
// resource (reverse); clean chooses the path (see step). identity is
// the chain of the subject itself: nil for a plain subject, the subject
// set otherwise. An edge crossing a relationship that names the root
// ends the chain there (the evaluator grants such a relationship
// directly).
func (g *accessGraph) pathUp(i int32, clean bool, identity *pathNode) *pathNode {
	head := &pathNode{}
	tail := head
	for x := i; x != 0; {
		c := &g.nodes[x]
		st := g.step(x, clean)
		pn := &pathNode{obj: graph.ObjectRef{Type: c.n.typ, ID: c.n.id}, rel: c.n.rel, via: st.via, rship: st.rship}
		tail.next, tail = pn, pn
		if st.parent == 0 && st.rship != nil && st.via == "" {
			return head.next
		}
		x = st.parent
	}
	tail.next = identity
	return head.next
}

// ends returns, for every node, the largest over the chains of granting
// edges from the root to it of the earliest expiration on the chain
// (dispatch.Never for a chain that never expires; 0 for a node not
// reached). It is Dijkstra's algorithm for widest paths: nodes are
// settled in decreasing order of their width.
func (g *accessGraph) ends() []int64 {
	width := make([]int64, len(g.nodes))
	width[0] = dispatch.Never
	if !g.expiring {
		for i := range width {
			width[i] = dispatch.Never
		}
		return width
	}
	// Adjacency in compressed rows: edges sorted by their source.
	edges := slices.Clone(g.edges)
	slices.SortFunc(edges, func(a, b graphEdge) int { return int(a.from) - int(b.from) })
	start := make([]int32, len(g.nodes)+1)
	for _, e := range edges {
		start[e.from+1]++
	}
	for i := range len(g.nodes) {
		start[i+1] += start[i]
	}
	done := make([]bool, len(g.nodes))
	q := &widthQueue{{node: 0, width: dispatch.Never}}
	for q.Len() > 0 {
		it := heap.Pop(q).(widthItem)
		if done[it.node] {
			continue
		}
		done[it.node] = true
		for _, e := range edges[start[it.node]:start[it.node+1]] {
			if w := min(it.width, e.until); w > width[e.to] && !done[e.to] {
				width[e.to] = w
				heap.Push(q, widthItem{node: e.to, width: w})
			}
		}
	}
	return width
}

type widthItem struct {
	node  int32
	width int64
}

// widthQueue is a max-heap of nodes by width.
type widthQueue []widthItem

func (q widthQueue) Len() int           { return len(q) }
func (q widthQueue) Less(i, j int) bool { return q[i].width > q[j].width }
func (q widthQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *widthQueue) Push(x any)        { *q = append(*q, x.(widthItem)) }
func (q *widthQueue) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}
