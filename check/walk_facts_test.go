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
// a grant after it ended: each answer must be the model's at its
// instant.
func TestLookupFactsUntils(t *testing.T) {
	rng := referenceRNG(t, 7)
	ctx := context.Background()
	later := []time.Duration{0, 90 * time.Minute, 150 * time.Minute, 210 * time.Minute}
	forEachWorld(t, rng, goldenNow, worldOptions{spread: true, monotone: true}, func(w *testWorld) bool {
		rctx := randomRequestContext(rng)
		e := New(Config{ChunkSize: 2})
		a := &accessCheck{t: t, s: w.s, src: w.src, rels: w.rels, ids: w.ids, ctx: rctx, now: goldenNow, store: w.store, world: w.n,
			truth: map[refTruthKey]map[refKey]refValue{}}
		var subjects []graph.SubjectRef
		for _, id := range w.ids["user"] {
			subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
		}
		for _, id := range w.ids["team"] {
			subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "team", ID: id}, Relation: "member"})
		}
		for _, sub := range subjects {
			want := a.model(sub, goldenNow)
			for _, typ := range w.s.DefinitionOrder {
				for _, perm := range w.s.Definitions[typ].Order {
					got := map[string]Permissionship{}
					req := LookupResourcesRequest{ResourceType: typ, Permission: perm, Subject: sub, Context: rctx, Now: goldenNow}
					if err := e.LookupResources(ctx, w.snap, req, func(r ResourceResult) bool {
						got[r.ID] = r.Permissionship
						return true
					}); err != nil {
						a.fail("lookup %s#%s@%s: %v", typ, perm, sub, err)
						continue
					}
					for _, id := range w.ids[typ] {
						if v := want[refKey{typ, id, perm}].perm; got[id] != v {
							a.fail("lookup %s#%s@%s: %s is %v, the model says %v", typ, perm, sub, id, got[id], v)
						}
					}
				}
			}
		}
		for _, d := range later {
			at := goldenNow.Add(d)
			for _, sub := range subjects {
				want := a.model(sub, at)
				for _, typ := range w.s.DefinitionOrder {
					for _, perm := range w.s.Definitions[typ].Order {
						for _, id := range w.ids[typ] {
							r, err := e.Check(ctx, w.snap, Request{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, Subject: sub, Context: rctx, Now: at})
							if v := want[refKey{typ, id, perm}]; err != nil || r.Permissionship != v.perm {
								a.fail("check %s:%s#%s@%s at now+%v after the lookups: %v %v, the model says %v", typ, id, perm, sub, d, r.Permissionship, err, v.perm)
							}
						}
					}
				}
			}
		}
		return !a.failed
	})
}
