package schema

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Node is a relation or permission on an object type, or with Relation ""
// the objects of the type themselves (a plain subject like `user:alice`).
// Walking reachability edges from a subject's node upward finds every
// resource relation or permission it may hold.
type Node struct {
	Type     string
	Relation string
}

// String prints `type` or `type#relation`.
func (n Node) String() string {
	if n.Relation == "" {
		return n.Type
	}
	return n.Type + "#" + n.Relation
}

// EdgeKind says how an object at an edge's From node leads to an object at
// its To node.
type EdgeKind int

const (
	// EdgeDirect: stored relationships `To.Type:x#To.Relation@From...`
	// (From.Relation "" = plain subject, else a subject set).
	EdgeDirect EdgeKind = iota
	// EdgeWildcard: stored relationships `To.Type:x#To.Relation@From.Type:*`
	// reach every object of From.Type.
	EdgeWildcard
	// EdgeComputed: To's expression names From.Relation on the same object.
	EdgeComputed
	// EdgeArrow: To's expression walks Tupleset to From.Relation; stored
	// relationships `To.Type:x#Tupleset@From.Type:y` (any subject relation)
	// lead from y to x.
	EdgeArrow
)

func (k EdgeKind) String() string {
	return [...]string{"direct", "wildcard", "computed", "arrow"}[k]
}

// Edge is one step upward in the reachability graph.
type Edge struct {
	Kind     EdgeKind
	From, To Node
	Tupleset string    // EdgeArrow only
	Func     ArrowFunc // EdgeArrow only
	// Conditional means reaching To along this edge is necessary but not
	// sufficient: the edge sits under an intersection, the base of an
	// exclusion, or an all-arrow, so a reverse lookup must confirm each
	// candidate with a check.
	Conditional bool
	// Secondary means every way along the edge enters an intersection
	// through a branch other than its first. An object it leads to holds
	// the intersection only if it also holds the first branch, so it is
	// reached through the first branch too: a reverse lookup finds every
	// candidate without the edge (see Reachability.Lookup).
	Secondary bool
}

// String prints the edge, e.g. `group#member -> document#viewer (direct)`.
func (e Edge) String() string {
	s := fmt.Sprintf("%s -> %s (%s", e.From, e.To, e.Kind)
	if e.Kind == EdgeArrow {
		fn := "any"
		if e.Func == ArrowAll {
			fn = "all"
		}
		s += fmt.Sprintf(" via %s, %s", e.Tupleset, fn)
	}
	if e.Conditional {
		s += ", conditional"
	}
	if e.Secondary {
		s += ", secondary"
	}
	return s + ")"
}

// Reachability is the schema's graph for reverse lookups: for every node,
// the edges leading upward from it. Edge lists are built at compile time
// and sorted; the per-target sets behind Toward are computed on first use
// and memoized.
type Reachability struct {
	defs  map[string]*Definition
	edges map[Node][]Edge
	nodes []Node // every node with an edge, sorted

	mu sync.Mutex
	// reverse maps To → From of every edge, and of every edge but the
	// secondary ones; built on first use.
	reverse, reversePrimary map[Node][]Node
	// toward and lookup cache, by target node, the paths of Toward and
	// Lookup.
	toward, lookup map[Node]*Paths
}

// Paths is the part of the reachability graph that leads to one target.
type Paths struct {
	Target  Node
	r       *Reachability
	reaches map[Node]bool // nodes with a path to Target, Target included
	primary bool          // secondary edges are left out

	subtractedOnce sync.Once
	subtracted     []Node // see Subtracted
}

// lazyReachability builds a schema's reachability graph once, on first
// use: compiling stays cheap for callers that never look up in reverse.
type lazyReachability struct {
	once sync.Once
	r    *Reachability
}

// Reachability returns the schema's reachability graph, building it on the
// first call (safe for concurrent use).
func (s *Schema) Reachability() *Reachability {
	if s.reach == nil {
		// A schema built by hand rather than compiled: no cache to fill.
		return buildReachability(s)
	}
	s.reach.once.Do(func() { s.reach.r = buildReachability(s) })
	return s.reach.r
}

// Edges returns the edges leading upward from n, sorted.
func (r *Reachability) Edges(from Node) []Edge { return r.edges[from] }

// Toward returns the paths leading to target, along every edge.
func (r *Reachability) Toward(target Node) *Paths { return r.paths(target, false) }

// Lookup returns the paths a reverse lookup walks to target: Toward
// without the secondary edges, which lead only to objects the walk reaches
// through an intersection's first branch anyway. Walking an intersection
// from its first branch alone keeps a lookup from visiting every object a
// broad branch (say, everyone cleared for a tier) reaches.
func (r *Reachability) Lookup(target Node) *Paths { return r.paths(target, true) }

func (r *Reachability) paths(target Node, primary bool) *Paths {
	r.mu.Lock()
	defer r.mu.Unlock()
	cache, reverse := &r.toward, &r.reverse
	if primary {
		cache, reverse = &r.lookup, &r.reversePrimary
	}
	if p, ok := (*cache)[target]; ok {
		return p
	}
	if *cache == nil {
		*cache = map[Node]*Paths{}
	}
	if *reverse == nil {
		*reverse = map[Node][]Node{}
		for _, from := range r.nodes {
			for _, e := range r.edges[from] {
				if !(primary && e.Secondary) {
					(*reverse)[e.To] = append((*reverse)[e.To], from)
				}
			}
		}
	}
	reaches := map[Node]bool{target: true}
	queue := []Node{target}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, from := range (*reverse)[n] {
			if !reaches[from] {
				reaches[from] = true
				queue = append(queue, from)
			}
		}
	}
	p := &Paths{Target: target, r: r, reaches: reaches, primary: primary}
	(*cache)[target] = p
	return p
}

// Reaches reports whether a subject at node from can reach the target.
func (p *Paths) Reaches(from Node) bool { return p.reaches[from] }

// Edges returns the edges from node that lie on some path to the target.
func (p *Paths) Edges(from Node) []Edge {
	var out []Edge
	for _, e := range p.r.edges[from] {
		if p.reaches[e.To] && !(p.primary && e.Secondary) {
			out = append(out, e)
		}
	}
	return out
}

// EntryPoints lists, sorted, the nodes other than the target with a path
// to it: the subject types and subject sets that can hold the target.
func (p *Paths) EntryPoints() []Node {
	var out []Node
	for n := range p.reaches {
		if n != p.Target {
			out = append(out, n)
		}
	}
	sortNodes(out)
	return out
}

func sortNodes(ns []Node) {
	sort.Slice(ns, func(i, j int) bool {
		if ns[i].Type != ns[j].Type {
			return ns[i].Type < ns[j].Type
		}
		return ns[i].Relation < ns[j].Relation
	})
}

// String prints every edge, grouped by source node.
func (r *Reachability) String() string {
	var b strings.Builder
	for _, n := range r.nodes {
		fmt.Fprintf(&b, "%s:\n", n)
		for _, e := range r.edges[n] {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// String prints, for the target, each entry point and the edges out of it
// that lead to the target.
func (p *Paths) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n", p.Target)
	// The target's own edges back to itself (recursion through arrows)
	// come first.
	if es := p.Edges(p.Target); len(es) > 0 {
		fmt.Fprintf(&b, "  from %s (itself):\n", p.Target)
		for _, e := range es {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	for _, n := range p.EntryPoints() {
		fmt.Fprintf(&b, "  from %s:\n", n)
		for _, e := range p.Edges(n) {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	return b.String()
}

// edgeKey identifies an edge regardless of Conditional.
type edgeKey struct {
	kind     EdgeKind
	from, to Node
	tupleset string
	fn       ArrowFunc
}

// buildReachability derives the edges from a fully resolved schema.
func buildReachability(s *Schema) *Reachability {
	// Size for one edge per allowed type and a few per permission, to
	// avoid regrowing on large schemas.
	estimate := 0
	for _, def := range s.Definitions {
		for _, rel := range def.Relations {
			estimate += len(rel.Allowed)
		}
		estimate += 4 * len(def.Permissions)
	}
	// Edges are collected with duplicates, sorted, then merged.
	all := make([]Edge, 0, estimate)
	add := func(k edgeKey, conditional, secondary bool) {
		all = append(all, Edge{Kind: k.kind, From: k.from, To: k.to, Tupleset: k.tupleset, Func: k.fn,
			Conditional: conditional, Secondary: secondary})
	}
	for _, name := range s.DefinitionOrder {
		def := s.Definitions[name]
		for _, rel := range def.Relations {
			to := Node{def.Name, rel.Name}
			for _, a := range rel.Allowed {
				k := edgeKey{kind: EdgeDirect, from: Node{a.Type, a.Relation}, to: to}
				if a.Wildcard {
					k.kind = EdgeWildcard
				}
				add(k, false, false)
			}
		}
		for _, perm := range def.Permissions {
			to := Node{def.Name, perm.Name}
			// A permission's arrows are merged before they are expanded (one
			// edge per allowed type declaring the target), as duplicate
			// edges would be, so that an arrow repeated in an expression
			// costs nothing more: the compiler bounds the expanded edges of
			// distinct arrows (MaxArrowEdges).
			type flags struct{ cond, secondary bool }
			arrows := map[arrowKey]flags{}
			var walk func(e Expr, cond, secondary bool)
			walk = func(e Expr, cond, secondary bool) {
				switch e := e.(type) {
				case *RelationRef:
					add(edgeKey{kind: EdgeComputed, from: Node{def.Name, e.Name}, to: to}, cond, secondary)
				case *Arrow:
					k := arrowKey{e.Tupleset, e.Target, e.Func}
					f := flags{cond || e.Func == ArrowAll, secondary}
					if prev, ok := arrows[k]; ok {
						f = flags{prev.cond && f.cond, prev.secondary && f.secondary}
					}
					arrows[k] = f
				case *Union:
					for _, ch := range e.Children {
						walk(ch, cond, secondary)
					}
				case *Intersection:
					for i, ch := range e.Children {
						walk(ch, true, secondary || i > 0)
					}
				case *Exclusion:
					// The subtracted side never grants.
					walk(e.Base, true, secondary)
				}
			}
			walk(perm.Expr, false, false)
			for k, f := range arrows {
				ts := def.Relations[k.tupleset]
				if ts == nil {
					continue
				}
				for _, a := range ts.Allowed {
					target := s.Definitions[a.Type]
					if target == nil || !target.Has(k.target) {
						continue
					}
					add(edgeKey{kind: EdgeArrow, from: Node{a.Type, k.target}, to: to, tupleset: k.tupleset, fn: k.fn}, f.cond, f.secondary)
				}
			}
		}
	}
	slices.SortFunc(all, compareEdges)
	merged := all[:0]
	for _, e := range all {
		if n := len(merged); n > 0 && compareEdges(merged[n-1], e) == 0 {
			// One unconditional way along the edge is enough; one way that
			// is not secondary makes the edge necessary.
			merged[n-1].Conditional = merged[n-1].Conditional && e.Conditional
			merged[n-1].Secondary = merged[n-1].Secondary && e.Secondary
			continue
		}
		merged = append(merged, e)
	}
	all = merged
	r := &Reachability{defs: s.Definitions, edges: map[Node][]Edge{}, toward: map[Node]*Paths{}}
	for start := 0; start < len(all); {
		end := start + 1
		for end < len(all) && all[end].From == all[start].From {
			end++
		}
		r.edges[all[start].From] = all[start:end:end]
		r.nodes = append(r.nodes, all[start].From)
		start = end
	}
	return r
}

// compareEdges orders edges by source, destination, kind, tupleset and
// function (not Conditional), so every listing is deterministic.
func compareEdges(a, b Edge) int {
	if c := cmp.Compare(a.From.Type, b.From.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.From.Relation, b.From.Relation); c != 0 {
		return c
	}
	if c := cmp.Compare(a.To.Type, b.To.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.To.Relation, b.To.Relation); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Tupleset, b.Tupleset); c != 0 {
		return c
	}
	return cmp.Compare(a.Func, b.Func)
}
