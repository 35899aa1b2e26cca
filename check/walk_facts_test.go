package check

import (
	"context"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
)

// TestLookupFactsUntils checks, on random worlds of the reference model
// with expirations spread over several instants, the answers a lookup
// derives from what its walk proved (see walkFacts). An ID-ordered
// lookup confirms its candidates with the walk's grants and refusals,
// and the confirmations enter the engine's cache with the walk's bounds;
// so every lookup runs first, at now, on an engine with a cache, and
// then every check, on the same engine, at instants past one, two and
// three of the expirations. A bound too late would let the cache answer
// a grant after it ended. The oracle is Check on an engine without a
// cache (which TestReferenceModel holds to the model), so the wildcard
// subject user:* is asked too.
func TestLookupFactsUntils(t *testing.T) {
	rng := referenceRNG(t, 7)
	ctx := context.Background()
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true})
	later := []time.Duration{0, 90 * time.Minute, 150 * time.Minute, 210 * time.Minute}
	forEachWorld(t, rng, goldenNow, worldOptions{spread: true, monotone: true}, func(w *testWorld) bool {
		rctx := randomRequestContext(rng)
		e := New(Config{ChunkSize: 2})
		failed := false
		fail := func(format string, args ...any) {
			if !failed {
				t.Errorf("world %d:\n%s", w.n, w.src)
			}
			failed = true
			t.Errorf(format, args...)
		}
		want := func(typ, id, perm string, sub graph.SubjectRef, at time.Time) Permissionship {
			r, err := cold.Check(ctx, w.snap, Request{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, Subject: sub, Context: rctx, Now: at})
			if err != nil {
				t.Fatalf("world %d: check %s:%s#%s@%s: %v", w.n, typ, id, perm, sub, err)
			}
			return r.Permissionship
		}
		subjects := []graph.SubjectRef{{Object: graph.ObjectRef{Type: "user", ID: graph.Wildcard}}}
		for _, id := range w.ids["user"] {
			subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
		}
		for _, id := range w.ids["team"] {
			subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "team", ID: id}, Relation: "member"})
		}
		for _, sub := range subjects {
			for _, typ := range w.s.DefinitionOrder {
				for _, perm := range w.s.Definitions[typ].Order {
					got := map[string]Permissionship{}
					req := LookupResourcesRequest{ResourceType: typ, Permission: perm, Subject: sub, Context: rctx, Now: goldenNow}
					if err := e.LookupResources(ctx, w.snap, req, func(r ResourceResult) bool {
						got[r.ID] = r.Permissionship
						return true
					}); err != nil {
						fail("lookup %s#%s@%s: %v", typ, perm, sub, err)
						continue
					}
					for _, id := range w.ids[typ] {
						if v := want(typ, id, perm, sub, goldenNow); got[id] != v {
							fail("lookup %s#%s@%s: %s is %v, Check says %v", typ, perm, sub, id, got[id], v)
						}
					}
				}
			}
		}
		for _, d := range later {
			at := goldenNow.Add(d)
			for _, sub := range subjects {
				for _, typ := range w.s.DefinitionOrder {
					for _, perm := range w.s.Definitions[typ].Order {
						for _, id := range w.ids[typ] {
							r, err := e.Check(ctx, w.snap, Request{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, Subject: sub, Context: rctx, Now: at})
							if v := want(typ, id, perm, sub, at); err != nil || r.Permissionship != v {
								fail("check %s:%s#%s@%s at now+%v after the lookups: %v %v, without a cache %v", typ, id, perm, sub, d, r.Permissionship, err, v)
							}
						}
					}
				}
			}
		}
		return !failed
	})
}
