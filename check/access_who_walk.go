package check

import (
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// whoWalk walks forward from a resource's permission to the plain
// subjects that hold it, recording an accessGraph. It is the fast way to
// answer WhoCanAccess for a monotone permission: one walk gives every
// subject its permissionship, shortest path and end.
//
// The walk is exact, and its graph the answer, when the permission is
// monotone (monotoneFrom), or subtracts only in its own expression (then
// the walk covers its skeleton, see skeletonFrom, and each row is
// checked), and the walk met nothing a check would judge
// differently: a relationship the schema does not allow, a wildcard in a
// subject set or an arrow, a caveat that fails to evaluate, or a chain
// deeper than MaxDepth. Otherwise WhoCanAccess answers the permission
// with LookupSubjects and a check per row.
type whoWalk struct {
	ev    *evaluation // reads storage and decides caveats; its subject is unused
	g     *accessGraph
	types map[string]bool // the plain subject types asked about
	reach map[[2]string]bool
	exact bool
	// monotone: the permission is monotone, so the graph decides every
	// row; otherwise only the permission's skeleton was walked (see
	// skeletonFrom) and a check decides each row.
	monotone bool

	frontier []walkBatch
	index    map[walkBatchKey]int
}

// walkBatch is the frontier of one type#relation: the nodes to expand.
type walkBatch struct {
	typ, rel string
	ids      []string
	at       []int32 // the nodes' indexes in the graph
}

type walkBatchKey struct{ typ, rel string }

// walkWho walks from res#perm and returns the walk; w.exact says whether
// its graph is the answer. A graph of more than maxNodes objects fails
// with ErrAccessTooLarge.
func walkWho(ev *evaluation, res graph.ObjectRef, perm string, types []string, maxNodes int) (*whoWalk, error) {
	reach, exact, monotone := skeletonFrom(ev.schema, res.Type, perm)
	w := &whoWalk{ev: ev, g: newAccessGraph(node{res.Type, res.ID, perm}, maxNodes), types: map[string]bool{}, reach: reach,
		exact: exact, monotone: monotone}
	for _, t := range types {
		w.types[t] = true
	}
	if !exact {
		return w, nil
	}
	w.queue(0)
	for len(w.frontier) > 0 && w.exact && !w.g.full {
		cur := w.frontier
		w.frontier, w.index = nil, nil
		for _, b := range cur {
			if err := w.ev.ctx.Err(); err != nil {
				return nil, err
			}
			if err := w.expand(b); err != nil {
				return nil, err
			}
		}
	}
	return w, w.g.err()
}

// queue adds node i to the frontier.
func (w *whoWalk) queue(i int32) {
	n := w.g.nodes[i].n
	if int(w.g.nodes[i].level) > w.ev.eng.cfg.MaxDepth || !w.reach[[2]string{n.typ, n.rel}] {
		w.exact = false
		return
	}
	if w.index == nil {
		w.index = map[walkBatchKey]int{}
	}
	k := walkBatchKey{n.typ, n.rel}
	bi, ok := w.index[k]
	if !ok {
		bi = len(w.frontier)
		w.index[k] = bi
		w.frontier = append(w.frontier, walkBatch{typ: n.typ, rel: n.rel})
	}
	w.frontier[bi].ids = append(w.frontier[bi].ids, n.id)
	w.frontier[bi].at = append(w.frontier[bi].at, i)
}

// visit records an edge to n and queues n if it must be expanded; a
// plain subject is a leaf.
func (w *whoWalk) visit(from int32, n node, clean bool, rship *graph.Relationship, via string) {
	i, expand := w.g.reach(from, n, clean, rship, via)
	if expand && n.rel != "" {
		w.queue(i)
	}
}

// expand follows a frontier batch, ChunkSize objects per storage query.
func (w *whoWalk) expand(b walkBatch) error {
	def := w.ev.schema.Definitions[b.typ]
	chunk := w.ev.eng.cfg.ChunkSize
	for start := 0; start < len(b.ids); start += chunk {
		end := min(start+chunk, len(b.ids))
		ids, at := b.ids[start:end], b.at[start:end]
		var err error
		if p := def.Permissions[b.rel]; p != nil {
			err = w.expandPermission(b.typ, ids, at, p.Expr)
		} else {
			err = w.expandRelation(b.typ, b.rel, ids, at, def.Relations[b.rel])
		}
		if err != nil || !w.exact {
			return err
		}
	}
	return nil
}

// expandPermission follows the leaves of a (monotone) permission: a
// relation or permission of the same object, or an arrow's relationships.
func (w *whoWalk) expandPermission(typ string, ids []string, at []int32, x schema.Expr) error {
	return walkExpr(x, true, func(x schema.Expr) error { // exclusions' bases only: the skeleton
		switch x := x.(type) {
		case *schema.RelationRef:
			for k, id := range ids {
				if w.ev.schema.Definitions[typ].Has(x.Name) {
					w.visit(at[k], node{typ, id, x.Name}, w.g.nodes[at[k]].clean, nil, "")
				}
			}
		case *schema.Arrow:
			via := x.Tupleset + "->" + x.Target
			ix := newIndex(ids)
			return w.read(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: x.Tupleset}, func(r graph.Relationship, clean bool) {
				k := ix.find(r.Resource.ID)
				o := r.Subject.Object
				if k < 0 {
					return
				}
				if o.ID == graph.Wildcard {
					w.exact = false
					return
				}
				if d := w.ev.schema.Definitions[o.Type]; d != nil && d.Has(x.Target) {
					w.visit(at[k], node{o.Type, o.ID, x.Target}, clean && w.g.nodes[at[k]].clean, &r, via)
				}
			})
		}
		return nil
	})
}

// expandRelation follows the relationships of relation r: a plain
// subject of a type asked about is a leaf, a subject set a node to
// expand.
func (w *whoWalk) expandRelation(typ, rel string, ids []string, at []int32, r *schema.Relation) error {
	ix := newIndex(ids)
	return w.read(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: rel}, func(x graph.Relationship, clean bool) {
		k := ix.find(x.Resource.ID)
		if k < 0 {
			return
		}
		sub := x.Subject
		if !allowedSubject(r, sub) {
			w.exact = false
			return
		}
		clean = clean && w.g.nodes[at[k]].clean
		if sub.Relation == "" {
			if w.types[sub.Object.Type] {
				w.visit(at[k], node{sub.Object.Type, sub.Object.ID, ""}, clean, &x, "")
			}
			return
		}
		if sub.Object.ID == graph.Wildcard {
			w.exact = false
			return
		}
		if d := w.ev.schema.Definitions[sub.Object.Type]; d != nil && d.Has(sub.Relation) {
			w.visit(at[k], node{sub.Object.Type, sub.Object.ID, sub.Relation}, clean, &x, "")
		}
	})
}

// read reads the relationships of f and calls fn for each that grants:
// live (the storage query leaves out the expired) with a caveat that is
// not false; clean when it is true or absent. A caveat that fails to
// evaluate makes the walk inexact (a check reports it, or never gets
// there).
func (w *whoWalk) read(f storage.Filter, fn func(r graph.Relationship, clean bool)) error {
	return readGranting(w.ev, f, &w.exact, fn)
}

// readGranting is whoWalk.read for any walk: exact is cleared on a
// caveat that fails.
func readGranting(ev *evaluation, f storage.Filter, exact *bool, fn func(r graph.Relationship, clean bool)) error {
	return ev.query(f, func(r graph.Relationship) {
		if !*exact {
			return
		}
		clean := true
		if r.Caveat != nil {
			c, err := ev.caveat(&r)
			if err != nil {
				*exact = false
				return
			}
			if c.perm == NoPermission {
				return
			}
			clean = c.perm == HasPermission
		}
		fn(r, clean)
	})
}
