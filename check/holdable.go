package check

import (
	"sync"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// holdable is the set of relations and permissions (type#name) a subject
// of one kind (plain type, or subject set type#relation) can hold under a
// schema at all: the nodes reachable upward from the subject's node in
// the schema's reachability graph. Stored relationships always follow the
// schema (a schema change that would orphan some is refused), so a
// problem outside the set is a plain "no" without a read: a user can
// never be one of a user's delegated agents, so `cleared_team->delegate`
// needs no look at a team's members when the subject is a user.
//
// The graph over-approximates (it follows every branch of an
// intersection and no subtracted side), so the set may hold problems the
// subject cannot hold, never the reverse.
type holdable map[schema.Node]bool

// holdableKey identifies a holdable set: the schema and the subject's node.
type holdableKey struct {
	s *schema.Schema
	n schema.Node
}

// holdableCache memoizes holdable sets by schema and subject kind. A
// schema has few subject kinds, and the engine sees few schemas, so the
// cache is bounded by dropping everything past holdableEntries.
type holdableCache struct {
	mu sync.Mutex // guards m
	m  map[holdableKey]holdable
}

// holdableEntries bounds the holdable sets an engine keeps.
const holdableEntries = 1024

// get returns the holdable set of subject kind n under s.
func (c *holdableCache) get(s *schema.Schema, n schema.Node) holdable {
	k := holdableKey{s, n}
	c.mu.Lock()
	h, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return h
	}
	h = buildHoldable(s, n)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= holdableEntries {
		c.m = make(map[holdableKey]holdable)
	}
	c.m[k] = h
	c.mu.Unlock()
	return h
}

// buildHoldable walks the reachability graph upward from n.
func buildHoldable(s *schema.Schema, n schema.Node) holdable {
	r := s.Reachability()
	h := holdable{n: true}
	queue := []schema.Node{n}
	for len(queue) > 0 {
		from := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, e := range r.Edges(from) {
			if !h[e.To] {
				h[e.To] = true
				queue = append(queue, e.To)
			}
		}
	}
	return h
}

// canHold reports whether the evaluation's subject can hold relation rel
// of typ at all (see holdable). An evaluation without a subject (a
// lookup's walk) prunes nothing.
func (ev *evaluation) canHold(typ, rel string) bool {
	if ev.subject.Object.Type == "" {
		return true
	}
	if ev.holdable == nil {
		ev.holdable = ev.eng.holdable.get(ev.schema, subjectNode(ev.subject))
	}
	return ev.holdable[schema.Node{Type: typ, Relation: rel}]
}

// subjectNode is the reachability node of a subject: its type, or its
// subject set's type#relation.
func subjectNode(s graph.SubjectRef) schema.Node {
	return schema.Node{Type: s.Object.Type, Relation: s.Relation}
}
