package check

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/relchanges"
)

// countedChanges counts the answers of a tracker that let a result serve
// another revision than its own.
type countedChanges struct {
	*relchanges.Tracker
	across atomic.Uint64
}

func (c *countedChanges) Unchanged(from, to storage.Revision, typ, rel string) bool {
	ok := c.Tracker.Unchanged(from, to, typ, rel)
	if ok && from != to {
		c.across.Add(1)
	}
	return ok
}

func (c *countedChanges) UnchangedIn(from, to storage.Revision, s relchanges.Scope) bool {
	ok := c.Tracker.UnchangedIn(from, to, s)
	if ok && from != to {
		c.across.Add(1)
	}
	return ok
}

// TestCachesAcrossRevisionsAgainstReference compares Check,
// LookupResources and LookupSubjects of engines whose read and subject-set
// caches serve results across revisions (Config.Changes, following the
// store's change stream) with the reference model, at the head and at
// older revisions of a history of random writes, before and after
// relationships expire, and across a schema write.
func TestCachesAcrossRevisionsAgainstReference(t *testing.T) {
	rng := referenceRNG(t, 3)
	ctx := context.Background()
	gens := []func(*rand.Rand) (string, []string, map[string][]string){randomWorld, recursiveWorld}
	var across uint64
	for worlds := 0; worlds < referenceIterations(t)/2; {
		src, _, ids := gens[worlds%2](rng)
		s, err := schema.Compile("random.zed", src)
		if err != nil {
			continue
		}
		worlds++
		now := time.Now().Add(time.Hour).Truncate(time.Second)
		w := newReachWorld(t, src, s, ids, randomRelationships(rng, s, ids, now))
		changes := &countedChanges{Tracker: &relchanges.Tracker{}}
		fctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			changes.Follow(fctx, w.store.eng, func(err error) { t.Errorf("follow: %v", err) })
		}()
		engines := []*Engine{New(Config{Changes: changes}), New(Config{Changes: changes, ChunkSize: 2})}
		failed := false
		for round := range 6 {
			if round == 3 {
				if _, err := w.store.eng.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: src}}); err != nil {
					t.Fatal(err)
				}
			}
			for range 1 + rng.IntN(3) {
				w.write(w.mutations(rng, now))
			}
			if rng.IntN(4) > 0 {
				waitChanges(t, changes.Tracker, w.revs[len(w.revs)-1])
			}
			for _, rev := range []storage.Revision{w.revs[len(w.revs)-1], w.revs[rng.IntN(len(w.revs))], w.revs[len(w.revs)-1]} {
				at := now.Add(time.Duration(rng.IntN(3)-1) * 90 * time.Minute)
				if w.compare(ctx, engines, rev, at, rng) || w.compareSubjects(ctx, engines, rev, at, rng) {
					failed = true
					break
				}
			}
			if failed {
				break
			}
		}
		stop()
		<-done
		if failed {
			return
		}
		across += changes.across.Load()
	}
	if across == 0 {
		t.Error("no cached result served a revision other than its own")
	}
	t.Logf("results served across revisions: %d", across)
}

// compareSubjects checks LookupSubjects of users on every relation and
// permission of every object at rev and instant at against the reference
// model, several times so that the subject-set cache fills and serves;
// it reports whether anything failed.
func (w *reachWorld) compareSubjects(ctx context.Context, engines []*Engine, rev storage.Revision, at time.Time, rng *rand.Rand) bool {
	t := w.t
	reader, err := w.store.eng.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{Schema: w.s, Reader: reader}
	rels := w.states[rev]
	ref := &refWorld{s: w.s, rels: rels, ids: w.ids, now: at}
	users := append(slices.Clone(w.ids["user"]), "u9")
	truth := map[string]map[refKey]refValue{}
	for _, id := range users {
		truth[id] = ref.solve(graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
	}
	for range 2 {
		for _, typ := range []string{"team", "folder", "doc"} {
			for _, name := range w.s.Definitions[typ].Order {
				for _, oid := range w.ids[typ] {
					got := map[string]Permissionship{}
					var wild *SubjectResult
					err := engines[rng.IntN(len(engines))].LookupSubjects(ctx, snap, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: oid}, Permission: name, SubjectType: "user", Now: at},
						func(r SubjectResult) bool {
							if r.Subject.Object.ID == graph.Wildcard {
								wild = &r
							} else {
								got[r.Subject.Object.ID] = r.Permissionship
							}
							return true
						})
					for _, id := range users {
						p, ok := got[id]
						if !ok && wild != nil && !slices.ContainsFunc(wild.Excluded, func(x graph.SubjectRef) bool { return x.Object.ID == id }) {
							p = wild.Permissionship
						}
						if want := truth[id][refKey{typ, oid, name}].perm; err != nil || p != want {
							t.Errorf("schema:\n%s\nrevision %d at %s, relationships:\n%s", w.src, rev, at, relsString(rels))
							t.Errorf("lookup subjects %s:%s#%s: user:%s is %v (%v), want %v", typ, oid, name, id, p, err, want)
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// waitChanges waits until tr has applied rev.
func waitChanges(t *testing.T, tr *relchanges.Tracker, rev storage.Revision) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Wait(ctx, rev); err != nil {
		t.Fatal(err)
	}
}
