package check

import (
	"math/rand/v2"
	"testing"
)

// TestSetIndexAgreesWithAMap builds indexes subject by subject, as add
// does, and whole, as buildIndex does, over random numbers (dense and
// sparse, some listed twice: the later place wins, as in a map), and
// compares every lookup, of listed and unlisted subjects, with a map.
func TestSetIndexAgreesWithAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, tc := range []struct {
		name   string
		n      int
		idSpan uint32
	}{
		{"empty", 0, 10},
		{"one", 1, 10},
		{"dense", 5000, 6000},
		{"sparse", 3000, 1 << 31},
		{"repeats", 2000, 500},
		{"one table's worth", 6, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []subjectID
			want := map[subjectID]int32{}
			grown := newSetIndex(0)
			for i := range tc.n {
				id := subjectID(rng.Uint32N(tc.idSpan))
				keys = append(keys, id)
				want[id] = int32(i)
				grown.put(keys, int32(i))
			}
			built := newSetIndex(len(keys))
			for i := range keys {
				built.put(keys, int32(i))
			}
			for name, ix := range map[string]*setIndex{"grown": grown, "built": built} {
				if ix.n != len(want) {
					t.Errorf("%s: %d slots in use, want %d", name, ix.n, len(want))
				}
				if ix.n*4 > len(ix.slots)*3 {
					t.Errorf("%s: %d of %d slots in use, over three quarters", name, ix.n, len(ix.slots))
				}
				for id, place := range want {
					if got, ok := ix.find(keys, id); !ok || got != place {
						t.Fatalf("%s: find(%d) = %d, %v; want %d", name, id, got, ok, place)
					}
				}
				for range 2000 {
					id := subjectID(rng.Uint32())
					_, listed := want[id]
					if _, ok := ix.find(keys, id); ok != listed {
						t.Fatalf("%s: find(%d) found %v, want %v", name, id, ok, listed)
					}
				}
			}
		})
	}
}
