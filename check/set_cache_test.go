package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
)

// TestSetCache runs every LookupSubjects of random worlds of the
// reference model, each asked several times at instants on both sides of
// the worlds' expirations and in varying order, on one engine whose set
// cache fills as it goes, and compares each answer with an engine
// without caches.
func TestSetCache(t *testing.T) {
	rng := referenceRNG(t, 4)
	ctx := context.Background()
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	cached := 0
	forEachWorld(t, rng, goldenNow, worldOptions{spread: true}, func(w *testWorld) bool {
		s, ids, snap, src, worlds := w.s, w.ids, w.snap, w.src, w.n
		var reqs []LookupSubjectsRequest
		for _, typ := range s.DefinitionOrder {
			for _, id := range ids[typ] {
				for _, perm := range s.Definitions[typ].Order {
					for _, st := range s.DefinitionOrder {
						reqs = append(reqs, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, SubjectType: st})
					}
				}
			}
		}
		e := New(Config{})
		nows := []time.Duration{0, 90 * time.Minute, 0, 150 * time.Minute, 30 * time.Minute, 4 * time.Hour}
		for _, d := range nows {
			rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
			for _, req := range reqs {
				req.Now = goldenNow.Add(d)
				got, err := lookupAll(ctx, e, snap, req)
				if err != nil {
					t.Fatalf("world %d: %s#%s@%s at +%v: %v\n%s", worlds, req.Resource, req.Permission, req.SubjectType, d, err, src)
				}
				want, err := lookupAll(ctx, cold, snap, req)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("world %d: %s#%s@%s at +%v: cached engine %v, without caches %v\n%s\nrelationships:\n%s", worlds, req.Resource, req.Permission, req.SubjectType, d, got, want, src, relsString(w.rels))
				}
			}
		}
		e.sets.mu.Lock()
		if e.sets.sets != nil {
			cached += e.sets.sets.Len()
		}
		e.sets.mu.Unlock()
		return true
	})
	if cached == 0 {
		t.Error("no set was cached")
	}
}

// lookupAll returns LookupSubjects' answers as sorted strings.
func lookupAll(ctx context.Context, e *Engine, snap Snapshot, req LookupSubjectsRequest) ([]string, error) {
	var out []string
	err := e.LookupSubjects(ctx, snap, req, func(r SubjectResult) bool {
		out = append(out, fmt.Sprintf("%s %v %v %v", r.Subject, r.Permissionship, r.Missing, r.Excluded))
		return true
	})
	slices.Sort(out)
	return out, err
}

// TestSetCacheConcurrent runs the lookups of a random world from several
// goroutines on one engine, which share its set cache, and compares them
// with an engine without caches (run it with -race).
func TestSetCacheConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 5))
	ctx := context.Background()
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	forEachWorld(t, rng, goldenNow, worldOptions{count: 4}, func(w *testWorld) bool {
		s, ids, snap, src, worlds := w.s, w.ids, w.snap, w.src, w.n
		var err error
		var reqs []LookupSubjectsRequest
		for _, typ := range s.DefinitionOrder {
			for _, id := range ids[typ] {
				for _, perm := range s.Definitions[typ].Order {
					reqs = append(reqs, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, SubjectType: "user", Now: goldenNow})
				}
			}
		}
		want := make([][]string, len(reqs))
		for i, req := range reqs {
			if want[i], err = lookupAll(ctx, cold, snap, req); err != nil {
				t.Fatal(err)
			}
		}
		e := New(Config{})
		errs := make(chan error, 4)
		for g := range 4 {
			go func() {
				for k := range 3 * len(reqs) {
					i := (k*(g+1) + g) % len(reqs)
					got, err := lookupAll(ctx, e, snap, reqs[i])
					if err == nil && !slices.Equal(got, want[i]) {
						err = fmt.Errorf("%s#%s: got %v, want %v", reqs[i].Resource, reqs[i].Permission, got, want[i])
					}
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("world %d: %v\n%s", worlds, err, src)
			}
		}
		return true
	})
}
