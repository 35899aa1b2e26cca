package check

import (
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// whatWalk walks upward from a subject along the schema's reachability
// edges to the resources whose permission it holds, recording an
// accessGraph: the reverse of whoWalk, for WhatCanAccess. It reads the
// reverse index as LookupResources does.
//
// The walk is exact, and its graph the answer, when the target
// permission is monotone (monotoneFrom; then no edge toward it is
// conditional), or subtracts only in its own expression (then the walk
// covers its skeleton, see skeletonFrom, and each row is checked), and
// the walk met no caveat that fails to evaluate and no
// chain deeper than MaxDepth. Otherwise WhatCanAccess answers with
// LookupResources and a check per row.
type whatWalk struct {
	ev     *evaluation // reads storage and decides caveats
	g      *accessGraph
	target schema.Node
	paths  *schema.Paths
	exact  bool
	// monotone: the target is monotone, so the graph decides every row;
	// otherwise only its skeleton was walked (see skeletonFrom) and a
	// check decides each row.
	monotone bool

	frontier []walkBatch
	index    map[walkBatchKey]int
	// found lists the nodes of the target: the resources reached.
	found []int32
}

// walkWhat walks from sub up to target; w.exact says whether its graph
// is the answer. A graph of more than maxNodes objects fails with
// ErrAccessTooLarge.
func walkWhat(ev *evaluation, sub graph.SubjectRef, target schema.Node, maxNodes int) (*whatWalk, error) {
	_, exact, monotone := skeletonFrom(ev.schema, target.Type, target.Relation)
	root := node{sub.Object.Type, sub.Object.ID, sub.Relation}
	w := &whatWalk{ev: ev, g: newAccessGraph(root, maxNodes), target: target, paths: ev.schema.Reachability().Lookup(target),
		exact: exact, monotone: monotone}
	if !exact {
		return w, nil
	}
	if root.typ == target.Type && root.rel == target.Relation {
		w.found = append(w.found, 0) // a subject set holds itself
	}
	w.queue(0)
	// Wildcard relationships name every plain subject of their type; they
	// are read from the subject's own node only.
	wildcard := sub.Relation == "" && sub.Object.ID != graph.Wildcard
	for len(w.frontier) > 0 && w.exact && !w.g.full {
		cur := w.frontier
		w.frontier, w.index = nil, nil
		for _, b := range cur {
			if err := w.ev.ctx.Err(); err != nil {
				return nil, err
			}
			if err := w.expand(b, wildcard); err != nil {
				return nil, err
			}
		}
		wildcard = false
	}
	return w, w.g.err()
}

// queue adds node i to the frontier.
func (w *whatWalk) queue(i int32) {
	x := &w.g.nodes[i]
	if int(x.level) > w.ev.eng.cfg.MaxDepth {
		w.exact = false
		return
	}
	if w.index == nil {
		w.index = map[walkBatchKey]int{}
	}
	k := walkBatchKey{x.n.typ, x.n.rel}
	bi, ok := w.index[k]
	if !ok {
		bi = len(w.frontier)
		w.index[k] = bi
		w.frontier = append(w.frontier, walkBatch{typ: x.n.typ, rel: x.n.rel})
	}
	w.frontier[bi].ids = append(w.frontier[bi].ids, x.n.id)
	w.frontier[bi].at = append(w.frontier[bi].at, i)
}

// visit records an edge to object id at node to, queues it if it must be
// expanded, and notes a resource of the target reached for the first
// time.
func (w *whatWalk) visit(from int32, to schema.Node, id string, clean bool, rship *graph.Relationship, via string) {
	n := node{to.Type, id, to.Relation}
	_, seen := w.g.index[n]
	i, expand := w.g.reach(from, n, clean, rship, via)
	if w.g.full {
		return
	}
	if !seen && to == w.target {
		w.found = append(w.found, i)
	}
	if expand {
		w.queue(i)
	}
}

// expand follows every edge out of a frontier batch; wildcard says
// whether the batch is the subject's own node, whose wildcard edges are
// followed.
func (w *whatWalk) expand(b walkBatch, wildcard bool) error {
	from := schema.Node{Type: b.typ, Relation: b.rel}
	for _, edge := range w.paths.Edges(from) {
		// The only conditional edges toward a skeleton's target are its
		// exclusions' bases; a check decides those rows.
		if edge.Conditional && (w.monotone || edge.To != w.target) {
			w.exact = false
			return nil
		}
		switch edge.Kind {
		case schema.EdgeComputed:
			for k, id := range b.ids {
				w.visit(b.at[k], edge.To, id, w.g.nodes[b.at[k]].clean, nil, "")
			}
		case schema.EdgeWildcard:
			if !wildcard || b.rel != "" {
				continue
			}
			ellipsis := ""
			f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: b.typ, IDs: []string{graph.Wildcard}, Relation: &ellipsis},
				ResourceType: edge.To.Type, Relation: edge.To.Relation}
			if err := w.reverse(f, func(r graph.Relationship, clean bool) {
				w.visit(b.at[0], edge.To, r.Resource.ID, clean, &r, "")
			}); err != nil {
				return err
			}
		case schema.EdgeDirect, schema.EdgeArrow:
			if err := w.expandStored(b, edge); err != nil {
				return err
			}
		}
		if !w.exact {
			return nil
		}
	}
	return nil
}

// expandStored follows a direct or arrow edge: the relationships naming
// the batch's objects, ChunkSize objects per reverse query.
func (w *whatWalk) expandStored(b walkBatch, edge schema.Edge) error {
	chunk := w.ev.eng.cfg.ChunkSize
	via := ""
	if edge.Kind == schema.EdgeArrow {
		via = edge.Tupleset + "->" + edge.From.Relation
	}
	for start := 0; start < len(b.ids); start += chunk {
		end := min(start+chunk, len(b.ids))
		ids, at := b.ids[start:end], b.at[start:end]
		ix := newIndex(ids)
		f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: b.typ, IDs: ids}, ResourceType: edge.To.Type, Relation: edge.To.Relation}
		if edge.Kind == schema.EdgeArrow {
			f.Relation = edge.Tupleset
		} else {
			rel := b.rel
			f.Subject.Relation = &rel
		}
		err := w.reverse(f, func(r graph.Relationship, clean bool) {
			if k := ix.find(r.Subject.Object.ID); k >= 0 {
				w.visit(at[k], edge.To, r.Resource.ID, clean && w.g.nodes[at[k]].clean, &r, via)
			}
		})
		if err != nil || !w.exact {
			return err
		}
	}
	return nil
}

// reverse reads relationships by subject and calls fn for each that
// grants, as readGranting does.
func (w *whatWalk) reverse(f storage.ReverseFilter, fn func(r graph.Relationship, clean bool)) error {
	ev := w.ev
	ev.eng.queries.Add(1)
	for r, err := range ev.reader.ReverseQueryRelationships(ev.ctx, f, ev.opts()) {
		if err != nil {
			return err
		}
		if !w.exact {
			return nil
		}
		clean := true
		if r.Caveat != nil {
			c, err := ev.caveat(&r)
			if err != nil {
				w.exact = false
				return nil
			}
			if c.perm == NoPermission {
				continue
			}
			clean = c.perm == HasPermission
		}
		fn(r, clean)
	}
	return nil
}
