package dispatch

import (
	"fmt"
	"math"
	"testing"

	"github.com/pembadb/pemba/graph"
)

func ringKey(i int) uint64 {
	return KeyHash(Key{Revision: 7, ResourceType: "document", ResourceID: fmt.Sprintf("doc-%d", i), Relation: "view",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ann"}}})
}

// TestRingStable: owners depend only on the set of members, and on no
// process-local state (the hash is fixed, so every node and build agrees).
func TestRingStable(t *testing.T) {
	a := NewRing([]string{"10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"})
	b := NewRing([]string{"10.0.0.3:50051", "10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.1:50051"})
	if a.Len() != 3 || b.Len() != 3 {
		t.Fatalf("lens %d %d, want 3", a.Len(), b.Len())
	}
	for i := range 1000 {
		if a.Owner(ringKey(i)) != b.Owner(ringKey(i)) {
			t.Fatalf("key %d: owners differ with member order", i)
		}
	}
	// Fixed owners: a change to KeyHash or the scoring would split a
	// cluster running two builds.
	want := []string{"10.0.0.3:50051", "10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.1:50051"}
	for i, w := range want {
		if got := a.Owner(ringKey(i)); got != w {
			t.Errorf("key %d: owner %s, want %s", i, got, w)
		}
	}
	if got := NewRing(nil).Owner(1); got != "" {
		t.Errorf("empty ring owner %q", got)
	}
}

func TestRingSpread(t *testing.T) {
	for _, n := range []int{2, 3, 5, 10} {
		var members []string
		for i := range n {
			members = append(members, fmt.Sprintf("pemba-%d.pemba:50051", i))
		}
		r := NewRing(members)
		const keys = 60000
		count := map[string]int{}
		for i := range keys {
			count[r.Owner(ringKey(i))]++
		}
		want := float64(keys) / float64(n)
		for _, m := range members {
			if dev := math.Abs(float64(count[m])-want) / want; dev > 0.05 {
				t.Errorf("%d members: %s owns %d keys, %.1f%% off the even %v", n, m, count[m], 100*dev, want)
			}
		}
	}
}

// TestRingMovement: a member joining takes keys only from the others
// (about 1/n of them); a member leaving hands over only its own.
func TestRingMovement(t *testing.T) {
	three := NewRing([]string{"a:1", "b:1", "c:1"})
	four := NewRing([]string{"a:1", "b:1", "c:1", "d:1"})
	const keys = 40000
	moved := 0
	for i := range keys {
		before, after := three.Owner(ringKey(i)), four.Owner(ringKey(i))
		if before != after {
			moved++
			if after != "d:1" {
				t.Fatalf("key %d moved from %s to %s, not to the new member", i, before, after)
			}
		}
	}
	if frac := float64(moved) / keys; math.Abs(frac-0.25) > 0.02 {
		t.Errorf("joining moved %.3f of the keys, want about 0.25", frac)
	}
	two := NewRing([]string{"a:1", "c:1"})
	for i := range keys {
		before, after := three.Owner(ringKey(i)), two.Owner(ringKey(i))
		if before != "b:1" && before != after {
			t.Fatalf("key %d moved from %s to %s though its owner stayed", i, before, after)
		}
	}
}

func BenchmarkRingOwner(b *testing.B) {
	r := NewRing([]string{"a:1", "b:1", "c:1"})
	k := Key{Revision: 7, ResourceType: "document", ResourceID: "doc-1", Relation: "view",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ann"}}}
	for b.Loop() {
		_ = r.Owner(KeyHash(k))
	}
}
