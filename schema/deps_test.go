package schema

import (
	"slices"
	"testing"
)

// TestDependenciesAreInverse checks, on every member of a schema with
// arrows, subject sets, wildcards, recursion and exclusions, that m is in
// DependentRelations(p) exactly when p is in ComputablePermissions(m).
func TestDependenciesAreInverse(t *testing.T) {
	s, err := Compile("test.zed", `use expiration
caveat cav(a int) { a > 1 }
definition user {}
definition group {
	relation member: user | group#member | user with cav
	relation public: user:*
	permission everyone = member + public + nil
}
definition folder {
	relation parent: folder
	relation viewer: user | group#member | user with expiration
	permission view = viewer + parent->view
	permission strict = viewer & parent.all(view)
}
definition doc {
	relation parent: folder | group
	relation owner: user
	relation banned: user | group#everyone
	permission view = (owner + parent->view + parent->member) - banned
	permission edit = owner - (banned & view)
}`)
	if err != nil {
		t.Fatal(err)
	}
	var members []Node
	for _, def := range s.DefinitionOrder {
		members = append(members, Node{def, ""})
		for _, m := range s.Definitions[def].Order {
			members = append(members, Node{def, m})
		}
	}
	for _, p := range members {
		if p.Relation == "" || !s.Definitions[p.Type].IsPermission(p.Relation) {
			continue
		}
		deps, err := s.DependentRelations(p.Type, p.Relation)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if m.Relation == "" || m == p {
				continue
			}
			feeds, err := s.ComputablePermissions(m.Type, m.Relation)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(deps, m) != slices.Contains(feeds, p) {
				t.Errorf("%s depends on %s: %v, but %s feeds %s: %v", p, m, slices.Contains(deps, m), m, p, slices.Contains(feeds, p))
			}
		}
	}
}
