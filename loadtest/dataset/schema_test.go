package dataset

import (
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestRelationshipsFollowSchema compiles each data set's schema (no errors,
// no warnings) and checks that every generated relationship is allowed by
// it: the relation exists on the resource type and some allowed subject
// type matches the subject, its relation, wildcard, caveat and expiration.
func TestRelationshipsFollowSchema(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			d, err := New(name, Options{Scale: 1, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			s, err := schema.Compile(name+".zed", d.Schema())
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if w := s.Warnings(); len(w) > 0 {
				t.Fatalf("compile warnings: %v", w)
			}
			n := 0
			for r := range d.Relationships() {
				if n++; testing.Short() && n > 20000 {
					break
				}
				if err := allowed(s, r); err != "" {
					t.Fatalf("%s: %s", r, err)
				}
			}
			ne := d.NewEnemy(0)
			for _, r := range append(ne.Setup, ne.Grant) {
				if err := allowed(s, r); err != "" {
					t.Fatalf("new-enemy %s: %s", r, err)
				}
			}
			sm := d.NewSampler(1)
			for range 100 {
				if err := allowed(s, sm.Write()); err != "" {
					t.Fatalf("sampled write: %s", err)
				}
				c := sm.Check()
				def := s.Definition(c.Resource.Type)
				if def == nil || def.Permissions[c.Permission] == nil {
					t.Fatalf("sampled check %s: no such permission", c)
				}
			}
		})
	}
}

// allowed says why s does not allow r, or "".
func allowed(s *schema.Schema, r graph.Relationship) string {
	def := s.Definition(r.Resource.Type)
	if def == nil {
		return "no definition " + r.Resource.Type
	}
	relation := def.Relations[r.Relation]
	if relation == nil {
		return "no relation " + r.Relation
	}
	caveat := ""
	if r.Caveat != nil {
		caveat = r.Caveat.Name
		if s.Caveat(caveat) == nil {
			return "no caveat " + caveat
		}
	}
	for _, a := range relation.Allowed {
		if a.Type == r.Subject.Object.Type && a.Relation == r.Subject.Relation &&
			a.Wildcard == r.Subject.IsWildcard() && a.Caveat == caveat &&
			a.Expiration == (r.Expiration != nil) {
			return ""
		}
	}
	return "subject not allowed by relation " + r.Relation
}
