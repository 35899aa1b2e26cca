package schema

import (
	"fmt"
	"slices"
)

// This file answers which relations and permissions a permission is
// computed from, and the reverse: which ones a relation feeds. A member
// depends directly on
//
//   - for a relation, each subject set it allows (`group#member`), and the
//     subject type itself for a plain or wildcard subject (Node{"user", ""});
//   - for a permission, each relation or permission its expression names,
//     each arrow's tupleset, and the arrow's target on every subject type
//     of the tupleset that declares it.
//
// Both walks follow those edges transitively. Unlike Reachability, whose
// edges follow a subject upward, they include an arrow's tupleset: changing
// `document#parent` changes `permission view = parent->view`.

// DependentRelations returns, sorted, every relation and permission the
// permission def#perm is computed from, recursively; perm itself is left
// out even when it is recursive.
func (s *Schema) DependentRelations(def, perm string) ([]Node, error) {
	d := s.Definition(def)
	if d == nil {
		return nil, fmt.Errorf("definition %q not found", def)
	}
	if !d.IsPermission(perm) {
		if d.IsRelation(perm) {
			return nil, fmt.Errorf("%q on definition %q is a relation, not a permission", perm, def)
		}
		return nil, fmt.Errorf("permission %q not found on definition %q", perm, def)
	}
	start := Node{def, perm}
	return walkNodes(start, s.directDependencies), nil
}

// ComputablePermissions returns, sorted, every relation and permission
// whose members may change when def#rel's do, recursively: the reverse of
// DependentRelations. rel "" stands for the objects of type def themselves
// as plain subjects. def#rel itself is left out.
func (s *Schema) ComputablePermissions(def, rel string) ([]Node, error) {
	d := s.Definition(def)
	if d == nil {
		return nil, fmt.Errorf("definition %q not found", def)
	}
	if rel != "" && !d.Has(rel) {
		return nil, fmt.Errorf("relation %q not found on definition %q", rel, def)
	}
	dependents := s.dependents()
	return walkNodes(Node{def, rel}, func(n Node) []Node { return dependents[n] }), nil
}

// walkNodes returns, sorted, the members reachable from start along next,
// leaving out start and the plain-type nodes (Relation "").
func walkNodes(start Node, next func(Node) []Node) []Node {
	seen := map[Node]bool{start: true}
	queue := []Node{start}
	var out []Node
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, m := range next(n) {
			if seen[m] {
				continue
			}
			seen[m] = true
			queue = append(queue, m)
			if m.Relation != "" {
				out = append(out, m)
			}
		}
	}
	sortNodes(out)
	return out
}

// dependents inverts directDependencies over every member of the schema.
func (s *Schema) dependents() map[Node][]Node {
	out := map[Node][]Node{}
	for _, name := range s.DefinitionOrder {
		for _, m := range s.Definitions[name].Order {
			n := Node{name, m}
			for _, dep := range s.directDependencies(n) {
				out[dep] = append(out[dep], n)
			}
		}
	}
	return out
}

// directDependencies lists, without duplicates, what member n is computed
// from directly (see the file comment); nil for a plain type node.
func (s *Schema) directDependencies(n Node) []Node {
	d := s.Definition(n.Type)
	if d == nil || n.Relation == "" {
		return nil
	}
	var out []Node
	add := func(m Node) {
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	rel, perm := d.Lookup(n.Relation)
	if rel != nil {
		for _, a := range rel.Allowed {
			add(Node{a.Type, a.Relation})
		}
		return out
	}
	if perm == nil {
		return nil
	}
	var walk func(e Expr)
	walk = func(e Expr) {
		switch e := e.(type) {
		case *Union:
			for _, c := range e.Children {
				walk(c)
			}
		case *Intersection:
			for _, c := range e.Children {
				walk(c)
			}
		case *Exclusion:
			walk(e.Base)
			walk(e.Subtracted)
		case *RelationRef:
			add(Node{n.Type, e.Name})
		case *Arrow:
			add(Node{n.Type, e.Tupleset})
			ts := d.Relations[e.Tupleset]
			if ts == nil {
				return
			}
			for _, a := range ts.Allowed {
				if target := s.Definition(a.Type); target != nil && target.Has(e.Target) {
					add(Node{a.Type, e.Target})
				}
			}
		}
	}
	walk(perm.Expr)
	return out
}
