package check

import (
	"math/rand/v2"
	"testing"
)

// TestSubjectSetAlgebra checks the set operations of set evaluation
// (combine, capped, union, raiseAll) pointwise against member logic on
// random sets over a small universe, wildcard defaults included.
func TestSubjectSetAlgebra(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "unlisted"}
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() *subjectSet {
		s := &subjectSet{def: member(rng.IntN(3))}
		for _, id := range ids[:5] {
			if rng.IntN(2) == 0 {
				s.set(id, member(rng.IntN(3)))
			}
		}
		return s
	}
	ops := []struct {
		name string
		op   func(x, y member) member
	}{{"or", orMember}, {"and", andMember}, {"minus", minusMember}}
	for range 2000 {
		a, b := random(), random()
		for _, o := range ops {
			got := combine(a, b, o.op)
			for _, id := range ids {
				if want := o.op(a.get(id), b.get(id)); got.get(id) != want {
					t.Fatalf("%s(%v, %v) at %s: got %v, want %v", o.name, a, b, id, got.get(id), want)
				}
			}
		}
		c := member(rng.IntN(3))
		capd := capped(a, c, 0)
		for _, id := range ids {
			if want := min(a.get(id), c); capd.get(id) != want {
				t.Fatalf("capped(%v, %v) at %s: got %v, want %v", a, c, id, capd.get(id), want)
			}
		}
		before := map[string]member{}
		for _, id := range ids {
			before[id] = a.get(id)
		}
		u := cloneResults([]setResult{{set: a}})[0].set.union(b, c, 0, nil)
		for _, id := range ids {
			if want := max(before[id], min(b.get(id), c)); u.get(id) != want {
				t.Fatalf("union(%v, %v, %v) at %s: got %v, want %v", a, b, c, id, u.get(id), want)
			}
			if a.get(id) != before[id] {
				t.Fatalf("union changed its copied input at %s", id)
			}
		}
		w := cloneResults([]setResult{{set: a}})[0].set
		w.raiseAll(c, 0)
		for _, id := range ids {
			if want := max(before[id], c); w.get(id) != want {
				t.Fatalf("raiseAll(%v, %v) at %s: got %v, want %v", a, c, id, w.get(id), want)
			}
		}
	}
}
