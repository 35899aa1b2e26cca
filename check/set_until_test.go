package check

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
)

// TestSetUntils checks, on random worlds of the reference model with
// expirations spread over several instants, the until a set evaluation
// gives each subject it holds "yes" (see subjectSet.until), for every
// resource, relation or permission and plain subject type, at two
// instants:
//
//   - the model grants the subject the permission unconditionally at the
//     evaluation's instant, and conditionally or not at every expiration
//     instant before its until (so a row may start its search for the
//     end there);
//   - where the set says its untils are exact (setAnswer.exactEnds), the
//     until is the model's end of the access (the first expiration
//     instant at which it no longer grants; never: none);
//   - an engine whose set cache fills as it goes (the lookups run without
//     proofs, asked twice) holds the same subjects, with untils as true.
//
// Enough subjects must have an exact until before never for the test to
// mean something.
func TestSetUntils(t *testing.T) {
	rng := referenceRNG(t, 6)
	ctx := context.Background()
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	var exact, loose int
	forEachWorld(t, rng, goldenNow, worldOptions{spread: true}, func(w *testWorld) bool {
		rctx := randomRequestContext(rng)
		cached := New(Config{})
		for _, d := range []time.Duration{0, 90 * time.Minute} {
			now := goldenNow.Add(d)
			a := &accessCheck{t: t, s: w.s, src: w.src, rels: w.rels, ids: w.ids, ctx: rctx, now: now, store: w.store, world: w.n,
				truth: map[refTruthKey]map[refKey]refValue{}}
			for _, typ := range w.s.DefinitionOrder {
				for _, id := range w.ids[typ] {
					for _, perm := range w.s.Definitions[typ].Order {
						for _, st := range w.s.DefinitionOrder {
							req := LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, SubjectType: st, Context: rctx, Now: now}
							got := setUntils(t, ctx, cold, w, req, true)
							if got == nil {
								continue
							}
							k := refKey{typ, id, perm}
							for sid, u := range got.untils {
								sub := graph.SubjectRef{Object: graph.ObjectRef{Type: st, ID: sid}}
								switch {
								case u == dispatch.Never:
								case got.exact:
									exact++
								default:
									loose++
								}
								a.checkUntil(sub, k, u, got.exact)
							}
							// A set cache changes what an evaluation reads (a
							// cached set was computed for every subject, a
							// narrowed one for a few), and so may change an
							// until that is a lower bound, and whether untils
							// are exact, but never their truth.
							for range 2 {
								again := setUntils(t, ctx, cached, w, req, false)
								if again == nil {
									t.Fatalf("world %d: %s#%s@%s at %v: with the set cache the lookup left its sets to checks, without it did not\n%s",
										w.n, req.Resource, perm, st, now, w.src)
								}
								if !maps.EqualFunc(again.untils, got.untils, func(int64, int64) bool { return true }) {
									a.fail("%s#%s@%s at %v: with the set cache %v, without %v", req.Resource, perm, st, now, again.untils, got.untils)
								}
								for sid, u := range again.untils {
									a.checkUntil(graph.SubjectRef{Object: graph.ObjectRef{Type: st, ID: sid}}, k, u, again.exact)
								}
							}
						}
					}
				}
			}
			if a.failed {
				return false
			}
		}
		return true
	})
	t.Logf("untils before never: %d exact, %d lower bounds", exact, loose)
	if n := referenceIterations(t); exact < n {
		t.Errorf("too few exact untils before never to test: %d", exact)
	}
}

// checkUntil checks sub's until on k (see TestSetUntils).
func (a *accessCheck) checkUntil(sub graph.SubjectRef, k refKey, until int64, exact bool) {
	a.t.Helper()
	if v := a.model(sub, a.now)[k]; v.perm != HasPermission {
		a.fail("%s:%s#%s@%s: the set holds it, the model says %v", k.typ, k.id, k.rel, sub, v)
		return
	}
	for _, r := range a.rels {
		if e := r.Expiration; e != nil && e.After(a.now) && e.UnixNano() < until {
			if v := a.model(sub, *e)[k]; v.perm == NoPermission {
				a.fail("%s:%s#%s@%s: the set holds it until %v, the model says %v at %v", k.typ, k.id, k.rel, sub, time.Unix(0, until).UTC(), v, e)
				return
			}
		}
	}
	if !exact {
		return
	}
	var got time.Time
	if until != dispatch.Never {
		got = time.Unix(0, until).UTC()
	}
	if want := a.modelEnd(sub, k); !got.Equal(want) {
		a.fail("%s:%s#%s@%s: the set says it ends %v, the model %v", k.typ, k.id, k.rel, sub, got, want)
	}
}

// heldUntils is what a set evaluation says of the subjects it holds
// "yes": their untils, and whether those are exact.
type heldUntils struct {
	untils map[string]int64
	exact  bool
}

// setUntils runs req's LookupSubjects on e and returns its set's untils
// for the subjects it holds "yes", listed or not ("fresh" stands for
// those no relationship names); nil when set evaluation did not answer.
func setUntils(t *testing.T, ctx context.Context, e *Engine, w *testWorld, req LookupSubjectsRequest, proofs bool) *heldUntils {
	t.Helper()
	found, err := e.lookupSubjects(ctx, w.snap, req, setOptions{proofs: proofs}, func(SubjectResult) bool { return true })
	if err != nil {
		t.Fatalf("world %d: lookup %s#%s@%s: %v\n%s", w.n, req.Resource, req.Permission, req.SubjectType, err, w.src)
	}
	if found == nil {
		return nil
	}
	h := &heldUntils{untils: map[string]int64{}, exact: found.exactEnds}
	for _, sid := range append(append([]string(nil), w.ids[req.SubjectType]...), "fresh") {
		if o, _, ok := found.held(sid); ok {
			h.untils[sid] = o.until
		}
	}
	return h
}
