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
			direct := s.memberOf[u].list
			a, b := s.merge(direct), s.flattenMap(direct)
			if !slices.Equal(a, b) {
				t.Fatalf("world %d subject %v: merge %v, map %v", world, s.subjects.list[u], a, b)
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
