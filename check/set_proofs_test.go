package check

import (
	"context"
	"testing"

	"github.com/pembadb/pemba/graph"
)

// TestSetProofPaths checks, on random worlds of the reference model,
// every path a set evaluation's proofs give: for each resource, relation
// or permission and plain subject type, every subject the permission's
// set holds "yes" with a record gets a path that is connected from the
// subject to the resource's permission and whose relationships exist and
// are live, and a check grants the subject the permission
// unconditionally. Most such subjects must get a path (the records are
// not silently missing).
func TestSetProofPaths(t *testing.T) {
	rng := referenceRNG(t, 3)
	ctx := context.Background()
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	var yes, proved int
	forEachWorld(t, rng, goldenNow, worldOptions{}, func(w *testWorld) bool {
		s, ids, snap, store, src, worlds := w.s, w.ids, w.snap, w.store, w.src, w.n
		for _, typ := range s.DefinitionOrder {
			for _, id := range ids[typ] {
				res := graph.ObjectRef{Type: typ, ID: id}
				for _, perm := range s.Definitions[typ].Order {
					for _, st := range s.DefinitionOrder {
						req := LookupSubjectsRequest{Resource: res, Permission: perm, SubjectType: st, Now: goldenNow}
						found, err := e.lookupSubjects(ctx, snap, req, setOptions{proofs: true}, func(SubjectResult) bool { return true })
						if err != nil {
							t.Fatalf("world %d: lookup %s#%s@%s: %v\n%s", worlds, res, perm, st, err, src)
						}
						if found == nil {
							continue
						}
						root := found.ref
						for _, sid := range root.set.keys {
							if root.set.listedAs(sid) != memberYes {
								continue
							}
							yes++
							pn := proofPath(s, root, sid)
							if pn == nil {
								continue
							}
							proved++
							sub := graph.SubjectRef{Object: graph.ObjectRef{Type: st, ID: found.ids.name(sid)}}
							p := toPath(pn, sub, nil)
							if err := verifyChain(p, sub, res, perm); err != nil {
								t.Fatalf("world %d: %s#%s@%s: path %s: %v\n%s", worlds, res, perm, sub, p, err, src)
							}
							if err := store.verifyPath(p, goldenNow); err != nil {
								t.Fatalf("world %d: %s#%s@%s: path %s: %v\n%s", worlds, res, perm, sub, p, err, src)
							}
							r, err := e.Check(ctx, snap, Request{Resource: res, Permission: perm, Subject: sub, Now: goldenNow})
							if err != nil || r.Permissionship != HasPermission {
								t.Fatalf("world %d: %s#%s@%s: proved, but the check says %v (%v)\n%s", worlds, res, perm, sub, r.Permissionship, err, src)
							}
						}
					}
				}
			}
		}
		return true
	})
	t.Logf("%d of %d subjects held \"yes\" got a path from proofs", proved, yes)
	if proved < yes*3/4 {
		t.Errorf("only %d of %d subjects held \"yes\" got a path from proofs", proved, yes)
	}
}
