package check

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/pembadb/pemba/schema"
)

// TestConcurrentChecks runs many checks at once through one engine's cache
// and singleflight layers (run it with -race) and requires the answers of
// a fresh, uncached engine.
func TestConcurrentChecks(t *testing.T) {
	s, err := schema.Compile("nested-org.zed", nestedOrgSchema)
	if err != nil {
		t.Fatal(err)
	}
	org := newNestedOrg(1)
	store := newTestStore(t)
	store.write(t, org.rels)
	w := &benchWorld{org: org, store: store, snap: Snapshot{Schema: s, Reader: store.reader(t)}}
	n := 400
	if testing.Short() {
		n = 100
	}
	// A small set of requests, so that goroutines collide on sub-problems.
	reqs := w.randomChecks(n, 9)
	for i := range reqs {
		reqs[i].Resource.ID = reqs[i%20].Resource.ID
		reqs[i].Subject = reqs[i%7].Subject
	}
	ctx := context.Background()
	want := make([]Permissionship, len(reqs))
	fresh := New(Config{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true})
	for i, r := range reqs {
		res, err := fresh.Check(ctx, w.snap, r)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res.Permissionship
	}
	shared := New(Config{CacheEntries: 1000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range len(reqs) / 2 {
				i := rng.IntN(len(reqs))
				res, err := shared.Check(ctx, w.snap, reqs[i])
				if err != nil {
					t.Error(err)
					return
				}
				if res.Permissionship != want[i] {
					t.Errorf("%v: %v, want %v", reqs[i], res.Permissionship, want[i])
				}
			}
		}()
	}
	// BulkCheck concurrently with the single checks.
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, err := shared.BulkCheck(ctx, w.snap, reqs)
		if err != nil {
			t.Error(err)
			return
		}
		for i, r := range res {
			if r.Err != nil || r.Result.Permissionship != want[i] {
				t.Errorf("bulk %d: %v %v, want %v", i, r.Result.Permissionship, r.Err, want[i])
			}
		}
	}()
	wg.Wait()
	st := shared.Stats()
	if st.CacheHits == 0 {
		t.Errorf("no cache hits: %+v", st)
	}
}
