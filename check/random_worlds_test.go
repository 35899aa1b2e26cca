package check

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// testWorld is a random world of the reference model (randomWorld or
// randomMonotoneWorld, with randomRelationships), stored.
type testWorld struct {
	n     int // numbered from 1
	src   string
	s     *schema.Schema
	ids   map[string][]string
	rels  []graph.Relationship
	store *testStore
	snap  Snapshot
}

// worldOptions shapes the worlds forEachWorld makes.
type worldOptions struct {
	// count is the number of worlds; 0: referenceIterations.
	count int
	// monotone makes every other world a monotone one.
	monotone bool
	// spread moves every expiration still to come, and one relationship
	// in ten, to one of several instants 1–3 hours after now, so an
	// access can outlive one expiring path through another.
	spread bool
}

// referenceRNG returns a random source seeded from the clock or from
// PEMBA_REFERENCE_SEED, logging the seed; stream tells tests apart.
func referenceRNG(t *testing.T, stream uint64) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PEMBA_REFERENCE_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("PEMBA_REFERENCE_SEED: %v", err)
		}
	}
	t.Logf("seed %d (PEMBA_REFERENCE_SEED reproduces)", seed)
	return rand.New(rand.NewPCG(seed, stream))
}

// forEachWorld calls fn with random worlds drawn from rng, relationships
// written as of now, until it has made o.count of them or fn returns
// false. Schemas that fail to compile are drawn again.
func forEachWorld(t *testing.T, rng *rand.Rand, now time.Time, o worldOptions, fn func(w *testWorld) bool) {
	t.Helper()
	count := o.count
	if count == 0 {
		count = referenceIterations(t)
	}
	rejected := 0
	for n := 1; n <= count; {
		src, _, ids := randomWorld(rng)
		if o.monotone && n%2 == 0 {
			src, ids = randomMonotoneWorld(rng)
		}
		s, err := schema.Compile("random.zed", src)
		if err != nil {
			if rejected++; rejected > 100*n {
				t.Fatalf("random schemas keep failing to compile: %v", err)
			}
			continue
		}
		rels := randomRelationships(rng, s, ids, now)
		if o.spread {
			for i := range rels {
				if rels[i].Expiration != nil && rels[i].Expiration.After(now) || rng.IntN(10) == 0 {
					e := now.Add(time.Duration(1+rng.IntN(3)) * time.Hour)
					rels[i].Expiration = &e
				}
			}
		}
		store := newTestStore(t)
		store.write(t, rels)
		w := &testWorld{n: n, src: src, s: s, ids: ids, rels: rels, store: store, snap: Snapshot{Schema: s, Reader: store.reader(t)}}
		n++
		if !fn(w) {
			return
		}
	}
}

// randomRequestContext returns a request's caveat context for the
// random worlds' caveat (x > 5): none (left undecided), one that
// satisfies it, or one that does not, a third of the time each.
func randomRequestContext(rng *rand.Rand) map[string]any {
	switch rng.IntN(3) {
	case 0:
		return map[string]any{"x": 7}
	case 1:
		return map[string]any{"x": 1}
	}
	return nil
}
