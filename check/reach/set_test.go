package reach

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
)

// TestMergeMatchesMap: a subject's holders merged from sorted ancestor
// lists are those the map computes, on random nested graphs with cycles
// and expirations.
func TestMergeMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for world := range 200 {
		s := newSet(Key{"group", "member"}, nil)
		var d dirty
		groups := 2 + rng.IntN(12)
		g := func() string { return fmt.Sprintf("g%d", rng.IntN(groups)) }
		for range rng.IntN(3 * groups) {
			r := graph.Relationship{Resource: graph.ObjectRef{Type: "group", ID: g()}, Relation: "member"}
			if rng.IntN(2) == 0 {
				r.Subject = graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: g()}, Relation: "member"}
			} else {
				r.Subject = graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(3))}}
			}
			if rng.IntN(3) == 0 {
				r.Expiration = new(time.Date(2030, 1, 1, rng.IntN(5), 0, 0, 0, time.UTC))
			}
			s.change(r, false, &d)
		}
		s.refresh(&dirty{roots: seq(s.objects.len()), subjects: nil})
		for u := range s.subjects.len() {
			direct := s.store.edges(s.memberOf[u])
			a, b := s.merge(direct), s.flattenMap(direct)
			if !slices.Equal(a, b) {
				t.Fatalf("world %d subject %v: merge %v, map %v", world, s.subjects.name(uint32(u)), a, b)
			}
		}
	}
}

func seq(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}

// TestPack: holders keep each entry, an until only once one expires, and
// saturate levels beyond any depth limit.
func TestPack(t *testing.T) {
	es := []entry{{obj: 1, level: 1, until: Never}, {obj: 4, level: 2, until: 50}, {obj: 9, level: 70000, until: Never}}
	var st holderStore
	sp := st.pack(es)
	h := st.view(sp)
	if sp.len() != 3 || sp.words() != 6 || h.len() != 3 || h.until == nil || h.minUntil() != 50 {
		t.Fatalf("pack(%v) = %+v", es, h)
	}
	for _, c := range []struct {
		obj  uint32
		want entry
		ok   bool
	}{
		{1, entry{1, 1, Never}, true},
		{4, entry{4, 2, 50}, true},
		{9, entry{9, maxLevel, Never}, true},
		{5, entry{}, false},
	} {
		if got, ok := h.find(c.obj); got != c.want || ok != c.ok {
			t.Errorf("find(%d) = %v %v, want %v %v", c.obj, got, ok, c.want, c.ok)
		}
	}
	if h := st.view(st.pack(es[:1])); h.until != nil || h.minUntil() != Never {
		t.Errorf("pack without expirations keeps untils: %+v", h)
	}
}
