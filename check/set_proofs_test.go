package check

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
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
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PEMBA_REFERENCE_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (PEMBA_REFERENCE_SEED reproduces)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	ctx := context.Background()
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	var yes, proved int
	for worlds := 0; worlds < referenceIterations(t); {
		src, _, ids := randomWorld(rng)
		s, err := schema.Compile("random.zed", src)
		if err != nil {
			continue
		}
		worlds++
		store := newTestStore(t)
		store.write(t, randomRelationships(rng, s, ids, goldenNow))
		snap := Snapshot{Schema: s, Reader: store.reader(t)}
		for _, typ := range s.DefinitionOrder {
			for _, id := range ids[typ] {
				res := graph.ObjectRef{Type: typ, ID: id}
				for _, perm := range s.Definitions[typ].Order {
					for _, st := range s.DefinitionOrder {
						req := LookupSubjectsRequest{Resource: res, Permission: perm, SubjectType: st, Now: goldenNow}
						root, err := e.lookupSubjects(ctx, snap, req, true, func(SubjectResult) bool { return true })
						if err != nil {
							t.Fatalf("world %d: lookup %s#%s@%s: %v\n%s", worlds, res, perm, st, err, src)
						}
						if root == nil {
							continue
						}
						for _, sid := range root.set.keys {
							if root.set.m[sid] != memberYes {
								continue
							}
							yes++
							pn := proofPath(s, root, sid)
							if pn == nil {
								continue
							}
							proved++
							sub := graph.SubjectRef{Object: graph.ObjectRef{Type: st, ID: sid}}
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
	}
	t.Logf("%d of %d subjects held \"yes\" got a path from proofs", proved, yes)
	if proved < yes*3/4 {
		t.Errorf("only %d of %d subjects held \"yes\" got a path from proofs", proved, yes)
	}
}
