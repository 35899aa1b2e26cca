package check

import (
	"fmt"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// closureBudget bounds the objects a reverse closure may collect before the
// evaluator falls back to walking forward.
const closureBudget = 1024

// closure is the set of objects of one type whose recursive relation
// (`relation member: user | group#member`) contains the evaluation's
// subject, found by walking the reverse index upwards from the subject:
// a few queries for a subject in a few groups, where walking forward from
// a large group would visit all of its descendants. It is computed once
// per evaluation and answers every check of that relation.
type closure struct {
	ok    bool             // false: over budget, walk forward instead
	level map[string]int32 // object ID → length of its shortest chain to the subject
	link  map[string]graph.Relationship
	until int64
}

// recursive reports whether r on typ qualifies for a reverse closure: its
// only subject set is itself (typ#r) and no caveat is allowed, so every
// chain of relationships is an unconditional grant.
func recursive(typ string, r *schema.Relation) bool {
	self := false
	for _, a := range r.Allowed {
		if a.Caveat != "" {
			return false
		}
		if a.Relation != "" {
			if a.Type != typ || a.Relation != r.Name {
				return false
			}
			self = true
		}
	}
	return self
}

// closureFor returns the closure for typ#r, or nil when r does not qualify
// or the closure is over budget.
func (ev *evaluation) closureFor(typ string, r *schema.Relation) (*closure, error) {
	if ev.subject.Relation != "" || !recursive(typ, r) {
		return nil, nil
	}
	k := node{typ: typ, rel: r.Name}
	if cl, ok := ev.closures[k]; ok {
		if !cl.ok {
			return nil, nil
		}
		return cl, nil
	}
	cl, err := ev.buildClosure(typ, r)
	if err != nil {
		return nil, err
	}
	if ev.closures == nil {
		ev.closures = make(map[node]*closure)
	}
	ev.closures[k] = cl
	if !cl.ok {
		return nil, nil
	}
	return cl, nil
}

// buildClosure walks the reverse index up from the subject, level by
// level, and gives up (an empty closure, ok false) past closureBudget
// objects.
func (ev *evaluation) buildClosure(typ string, r *schema.Relation) (*closure, error) {
	s := ev.subject
	cl := &closure{ok: true, level: make(map[string]int32), until: dispatch.Never}
	if ev.explain {
		cl.link = make(map[string]graph.Relationship)
	}
	ids := []string{s.Object.ID}
	if s.Object.ID != graph.Wildcard && allowsWildcard(r, s.Object.Type) {
		ids = append(ids, graph.Wildcard)
	}
	ellipsis, self := "", r.Name
	var frontier []string
	visit := func(level int32) func(graph.Relationship) {
		return func(rel graph.Relationship) {
			if rel.Expiration != nil {
				cl.until = min(cl.until, rel.Expiration.UnixNano())
			}
			id := rel.Resource.ID
			if _, seen := cl.level[id]; seen {
				return
			}
			cl.level[id] = level
			if cl.link != nil {
				cl.link[id] = rel
			}
			frontier = append(frontier, id)
		}
	}
	if err := ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: s.Object.Type, IDs: ids, Relation: &ellipsis},
		ResourceType: typ, Relation: r.Name}, visit(1)); err != nil {
		return nil, err
	}
	for level := int32(2); len(frontier) > 0; level++ {
		if len(cl.level) > closureBudget {
			return &closure{}, nil
		}
		cur := frontier
		frontier = nil
		for start := 0; start < len(cur); start += ev.eng.cfg.ChunkSize {
			part := cur[start:min(start+ev.eng.cfg.ChunkSize, len(cur))]
			if err := ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: typ, IDs: part, Relation: &self},
				ResourceType: typ, Relation: r.Name}, visit(level)); err != nil {
				return nil, err
			}
		}
	}
	return cl, nil
}

// reverse reads relationships by subject, calling fn for each.
func (ev *evaluation) reverse(f storage.ReverseFilter, fn func(graph.Relationship)) error {
	ev.eng.queries.Add(1)
	for r, err := range ev.reader.ReverseQueryRelationships(ev.ctx, f, ev.opts()) {
		if err != nil {
			return fmt.Errorf("reverse query %s#%s: %w", f.ResourceType, f.Relation, err)
		}
		fn(r)
	}
	return nil
}

// fromClosure answers typ#rel for ids from a closure; out already holds the
// identity answers.
func (ev *evaluation) fromClosure(cl *closure, typ, rel string, ids []string, out []outcome, depth int) ([]outcome, error) {
	for i, id := range ids {
		out[i].until = min(out[i].until, cl.until)
		if out[i].perm == HasPermission {
			continue
		}
		lv, ok := cl.level[id]
		if !ok {
			continue
		}
		if depth+int(lv)-1 > ev.limit {
			cut, ok := ev.cutBranch()
			if !ok {
				return nil, fmt.Errorf("%w (%d) at %s:%s#%s", ErrMaxDepth, ev.eng.cfg.MaxDepth, typ, id, rel)
			}
			out[i].perm, out[i].low = cut, dispatch.CutLow // out[i] was a plain "no"
			continue
		}
		out[i].perm = HasPermission
		if ev.explain {
			out[i].path = cl.path(typ, rel, id)
		}
	}
	return out, nil
}

// path rebuilds the shortest chain from object id down to the subject.
func (cl *closure) path(typ, rel, id string) *pathNode {
	var head, tail *pathNode
	for range len(cl.level) + 1 {
		r := cl.link[id]
		n := &pathNode{obj: graph.ObjectRef{Type: typ, ID: id}, rel: rel, rship: &r}
		if head == nil {
			head = n
		} else {
			tail.next = n
		}
		tail = n
		if r.Subject.Object.Type != typ || r.Subject.Relation != rel {
			break
		}
		id = r.Subject.Object.ID
	}
	return head
}
