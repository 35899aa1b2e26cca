package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pembadb/pemba/check/reach"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

var _ Reach = (*reach.Index)(nil)

// reachWorld is a random world stored revision by revision, with a
// reachability index following its change stream.
type reachWorld struct {
	t      *testing.T
	src    string
	s      *schema.Schema
	ids    map[string][]string
	store  *testStore
	idx    *reach.Index
	stop   context.CancelFunc
	done   chan struct{}
	states map[storage.Revision][]graph.Relationship // every revision's relationships
	revs   []storage.Revision
	cur    map[graph.Key]graph.Relationship
}

// newReachWorld stores src's schema and rels and starts an index
// following the store.
func newReachWorld(t *testing.T, src string, s *schema.Schema, ids map[string][]string, rels []graph.Relationship) *reachWorld {
	t.Helper()
	ctx := context.Background()
	w := &reachWorld{t: t, src: src, s: s, ids: ids, store: newTestStore(t), idx: reach.New(reach.Options{}),
		states: map[storage.Revision][]graph.Relationship{}, cur: map[graph.Key]graph.Relationship{}, done: make(chan struct{})}
	if _, err := w.store.eng.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: src}}); err != nil {
		t.Fatal(err)
	}
	var fctx context.Context
	fctx, w.stop = context.WithCancel(ctx)
	go func() {
		defer close(w.done)
		w.idx.Follow(fctx, w.store.eng, func(st storage.StoredSchema) (*schema.Schema, error) {
			return schema.Compile("random.zed", st.Text)
		}, func(err error) { t.Errorf("follow: %v", err) })
	}()
	t.Cleanup(func() { w.stop(); <-w.done })
	var muts []storage.Mutation
	for _, r := range rels {
		muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: r})
	}
	w.write(muts)
	return w
}

// write commits muts as one revision and records the relationships after it.
func (w *reachWorld) write(muts []storage.Mutation) storage.Revision {
	w.t.Helper()
	rev, err := w.store.eng.Write(context.Background(), storage.WriteRequest{Mutations: muts})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, m := range muts {
		if m.Op == storage.OpDelete {
			delete(w.cur, m.Relationship.Key())
		} else {
			w.cur[m.Relationship.Key()] = m.Relationship
		}
	}
	w.states[rev] = slices.Collect(maps.Values(w.cur))
	w.revs = append(w.revs, rev)
	return rev
}

// caughtUp waits until the index has applied rev.
func (w *reachWorld) caughtUp(rev storage.Revision) {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, ok := w.idx.Revision(); ok && got >= rev {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the index did not apply revision %d within 10s", rev)
		}
		time.Sleep(time.Millisecond)
	}
}

// mutations draws a few random writes: new relationships (some
// expiring, before or after now) and deletes of stored ones.
func (w *reachWorld) mutations(rng *rand.Rand, now time.Time) []storage.Mutation {
	var muts []storage.Mutation
	seen := map[graph.Key]bool{}
	fresh := randomRelationships(rng, w.s, w.ids, now)
	// Most writes change the nested relation the index holds.
	nested := slices.DeleteFunc(slices.Clone(fresh), func(r graph.Relationship) bool { return r.Resource.Type != "team" || r.Relation != "member" })
	if len(nested) > 0 && rng.IntN(4) > 0 {
		fresh = nested
	}
	for n := 1 + rng.IntN(3); n > 0 && len(fresh) > 0; n-- {
		r := fresh[rng.IntN(len(fresh))]
		if !seen[r.Key()] {
			seen[r.Key()] = true
			muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: r})
		}
	}
	stored := slices.Collect(maps.Values(w.cur))
	slices.SortFunc(stored, func(a, b graph.Relationship) int { return strings.Compare(a.String(), b.String()) })
	for n := rng.IntN(3); n > 0 && len(stored) > 0; n-- {
		r := stored[rng.IntN(len(stored))]
		if !seen[r.Key()] {
			seen[r.Key()] = true
			muts = append(muts, storage.Mutation{Op: storage.OpDelete, Relationship: r})
		}
	}
	return muts
}

// TestReachIndexAgainstWalk compares Check, LookupResources and LookupSubjects answered
// with a reachability index with the reference model (and so with the walk) on random
// schemas and data, at random revisions of a history of random writes,
// at instants before and after some relationships expire, and across a
// schema write that rebuilds the index.
func TestReachIndexAgainstWalk(t *testing.T) {
	// LookupSubjects' narrowed evaluations prune by the objects found
	// upward from all their subjects (reachedBy, climbing the index's
	// referrers), which small worlds otherwise never do.
	defer func(n narrowTuning) { defaultNarrowing = n }(defaultNarrowing)
	defaultNarrowing = narrowTuning{sweepMin: 1, reachedMin: 1, reachedRatio: 1 << 20}
	rng := referenceRNG(t, 2)
	ctx := context.Background()
	gens := []func(*rand.Rand) (string, []string, map[string][]string){randomWorld, recursiveWorld}
	var hits uint64
	for worlds := 0; worlds < referenceIterations(t)/2; {
		src, _, ids := gens[worlds%2](rng)
		s, err := schema.Compile("random.zed", src)
		if err != nil {
			continue
		}
		worlds++
		// Expirations are relative to the wall clock: the index, like a
		// server, answers for instants no earlier than its writes.
		now := time.Now().Add(time.Hour).Truncate(time.Second)
		ids["team"] = append(ids["team"], "t4", "t5")
		w := newReachWorld(t, src, s, ids, randomRelationships(rng, s, ids, now))
		engines := []*Engine{
			New(Config{Reach: w.idx, CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true}),
			New(Config{Reach: w.idx, ChunkSize: 2}),
		}
		for round := range 6 {
			if round == 3 {
				// A schema write: the index rebuilds, and keeps answering
				// for the revisions before it meanwhile.
				if _, err := w.store.eng.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: src}}); err != nil {
					t.Fatal(err)
				}
			}
			for range 1 + rng.IntN(3) {
				w.write(w.mutations(rng, now))
			}
			if rng.IntN(4) > 0 {
				w.caughtUp(w.revs[len(w.revs)-1])
			}
			// The head and an older revision, at an instant before or after
			// some relationships expire.
			for _, rev := range []storage.Revision{w.revs[len(w.revs)-1], w.revs[rng.IntN(len(w.revs))]} {
				at := now.Add(time.Duration(rng.IntN(3)-1) * 90 * time.Minute)
				if w.compare(ctx, engines, rev, at, rng) {
					return
				}
			}
		}
		hits += w.idx.Stats().Hits
	}
	if hits == 0 {
		t.Errorf("the index answered no question")
	}
	t.Logf("index answers: %d", hits)
}

// compare checks every relation and permission of every object for every
// subject at rev and instant at against the reference model; it reports
// whether anything failed.
func (w *reachWorld) compare(ctx context.Context, engines []*Engine, rev storage.Revision, at time.Time, rng *rand.Rand) bool {
	t := w.t
	reader, err := w.store.eng.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{Schema: w.s, Reader: reader}
	rels := w.states[rev]
	var rctx map[string]any
	if rng.IntN(2) == 0 {
		rctx = map[string]any{"x": 7}
	}
	ref := &refWorld{s: w.s, rels: rels, ids: w.ids, ctx: rctx, now: at}
	failed := false
	fail := func(format string, args ...any) {
		if !failed {
			t.Errorf("schema:\n%s\nrevision %d at %s, relationships:\n%s", w.src, rev, at, relsString(rels))
		}
		failed = true
		t.Errorf(format, args...)
	}
	users := append(slices.Clone(w.ids["user"]), "u9")
	truths := map[string]map[refKey]refValue{}
	for _, id := range users {
		truths[id] = ref.solve(graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
	}
	// LookupSubjects agrees too.
	for _, typ := range []string{"team", "folder", "doc"} {
		def := w.s.Definitions[typ]
		for _, name := range def.Order {
			for _, oid := range w.ids[typ] {
				found, err := lookupSubjectsFound(ctx, engines[rng.IntN(len(engines))], snap, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: oid},
					Permission: name, SubjectType: "user", Context: rctx, Now: at})
				if err != nil {
					fail("lookup subjects %s:%s#%s: %v", typ, oid, name, err)
					continue
				}
				for _, id := range users {
					want := truths[id][refKey{typ, oid, name}].perm
					got := found.of(graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
					if got != want {
						fail("lookup subjects %s:%s#%s: %s is %v, want %v", typ, oid, name, id, got, want)
					}
				}
			}
		}
	}
	for _, id := range users {
		sub := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}}
		truth := truths[id]
		for _, typ := range []string{"team", "folder", "doc"} {
			def := w.s.Definitions[typ]
			for _, name := range def.Order {
				// LookupResources, which checks candidates through the same
				// closures, agrees too.
				got := map[string]Permissionship{}
				err := engines[rng.IntN(len(engines))].LookupResources(ctx, snap, LookupResourcesRequest{ResourceType: typ, Permission: name, Subject: sub, Context: rctx, Now: at},
					func(r ResourceResult) bool { got[r.ID] = r.Permissionship; return true })
				for _, oid := range w.ids[typ] {
					if want := truth[refKey{typ, oid, name}].perm; err != nil || got[oid] != want {
						if !failed {
							t.Errorf("schema:\n%s\nrevision %d at %s, relationships:\n%s", w.src, rev, at, relsString(rels))
						}
						failed = true
						t.Errorf("lookup resources %s#%s@%s: %s is %v (%v), want %v", typ, name, sub, oid, got[oid], err, want)
					}
				}
				for _, oid := range w.ids[typ] {
					want := truth[refKey{typ, oid, name}]
					for ei, e := range engines {
						r, err := e.Check(ctx, snap, Request{Resource: graph.ObjectRef{Type: typ, ID: oid}, Permission: name, Subject: sub, Context: rctx, Now: at})
						got := refValue{perm: r.Permissionship, missing: strings.Join(r.Missing, ",")}
						if err != nil || got != want {
							if !failed {
								t.Errorf("schema:\n%s\nrevision %d at %s, relationships:\n%s", w.src, rev, at, relsString(rels))
							}
							failed = true
							t.Errorf("check %s:%s#%s@%s engine %d: got %v %v, want %v", typ, oid, name, sub, ei, got, err, want)
						}
					}
				}
			}
		}
	}
	return failed
}

func relsString(rels []graph.Relationship) string {
	var lines []string
	for _, r := range rels {
		lines = append(lines, r.String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestReachIndexConcurrentMaintenance checks nested-group membership at
// the head while writers change the groups and the index follows them
// (run with -race): every answer agrees with the walk at the same
// snapshot.
func TestReachIndexConcurrentMaintenance(t *testing.T) {
	src := "definition user {}\n\ndefinition group {\n  relation member: user | group#member\n}\n"
	s, err := schema.Compile("groups.zed", src)
	if err != nil {
		t.Fatal(err)
	}
	groups := []string{"g0", "g1", "g2", "g3", "g4", "g5"}
	users := []string{"u0", "u1", "u2", "u3"}
	w := newReachWorld(t, src, s, map[string][]string{"group": groups, "user": users}, nil)
	indexed := New(Config{Reach: w.idx})
	walked := New(Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 1))
		for ctx.Err() == nil {
			r := graph.Relationship{Resource: graph.ObjectRef{Type: "group", ID: groups[rng.IntN(len(groups))]}, Relation: "member"}
			if rng.IntN(2) == 0 {
				r.Subject = graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: groups[rng.IntN(len(groups))]}, Relation: "member"}
			} else {
				r.Subject = graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: users[rng.IntN(len(users))]}}
			}
			op := storage.OpTouch
			if rng.IntN(3) == 0 {
				op = storage.OpDelete
			}
			if _, err := w.store.eng.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: op, Relationship: r}}}); err != nil && ctx.Err() == nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	}()
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(2, uint64(c)))
			for ctx.Err() == nil {
				// Half the checks read at the head, which the index has
				// usually not applied yet; half at the revision it holds.
				reader := w.store.reader(t)
				if applied, ok := w.idx.Revision(); ok && rng.IntN(2) == 0 {
					r, err := w.store.eng.SnapshotReader(ctx, applied)
					if err != nil {
						t.Errorf("read at %d: %v", applied, err)
						return
					}
					reader = r
				}
				snap := Snapshot{Schema: s, Reader: reader}
				req := Request{Resource: graph.ObjectRef{Type: "group", ID: groups[rng.IntN(len(groups))]}, Permission: "member",
					Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: users[rng.IntN(len(users))]}}}
				a, err1 := indexed.Check(ctx, snap, req)
				b, err2 := walked.Check(ctx, snap, req)
				if err1 != nil || err2 != nil || a.Permissionship != b.Permissionship {
					if ctx.Err() == nil {
						t.Errorf("%s at %d: index %v %v, walk %v %v", req.Resource, snap.Reader.Revision(), a.Permissionship, err1, b.Permissionship, err2)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := w.idx.Stats(); st.Hits == 0 {
		t.Errorf("the index answered no question: %+v", st)
	} else {
		t.Logf("%+v", st)
	}
}

// holdersOnly is a reachability index without its parent relations: the
// engine walks every parent arrow, as without Reach.Ancestors.
type holdersOnly struct{ *reach.Index }

func (holdersOnly) Ancestors(storage.Revision, string, string, []string, int64, int) (reach.Lineage, bool) {
	return reach.Lineage{}, false
}

// ancestorWorld draws a schema of folders nested through a parent
// relation and documents in them, most of whose permissions recurse over
// the parent relation as the index answers them, some in ways it must
// decline (a caveated or mixed parent relation, an arrow that is not
// last, a base that leads back to the permission, an .all arrow).
func ancestorWorld(rng *rand.Rand) (string, map[string][]string) {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var b strings.Builder
	b.WriteString("use expiration\n\ncaveat cav(x int) {\n  x > 5\n}\n\ndefinition user {}\n\n")
	b.WriteString("definition team {\n  relation member: user | team#member | user with expiration\n}\n\n")
	b.WriteString("definition folder {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", pick("folder", "folder with expiration", "folder with expiration", "folder | folder with cav", "folder | doc"))
	b.WriteString("  relation link: folder\n")
	fmt.Fprintf(&b, "  relation viewer: %s\n", pick("user | team#member", "user with expiration | team#member", "user | user with cav", "user | user:*", "user with expiration"))
	b.WriteString("  relation owner: user with expiration\n  relation banned: user\n")
	fmt.Fprintf(&b, "  permission view = %s\n", pick("viewer + parent->view", "viewer + owner + parent->view", "viewer + parent->view",
		"(viewer - banned) + parent->view", "(viewer & owner) + parent->view", "viewer + parent->view + owner",
		"viewer + link->view + parent->view", "viewer + parent.all(view)", "owner + (viewer + parent->view)"))
	fmt.Fprintf(&b, "  permission edit = %s\n}\n\n", pick("owner + parent->edit", "(view & owner) + parent->edit", "owner + link->view + parent->edit", "view - banned"))
	b.WriteString("definition doc {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", pick("folder", "folder with expiration"))
	b.WriteString("  relation viewer: user\n  relation banned: user\n")
	fmt.Fprintf(&b, "  permission view = %s\n", pick("viewer + parent->view", "viewer + parent->edit", "(viewer + parent->view) - banned"))
	b.WriteString("  permission edit = parent->edit\n}\n")
	ids := map[string][]string{"user": {"u1", "u2", "u3"}, "team": {"t1", "t2"},
		"folder": {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"}, "doc": {"d1", "d2", "d3", "d4"}}
	return b.String(), ids
}

// folderTree draws parent relationships among the folders: mostly a tree
// (each folder under an earlier one), with a second parent now and then,
// some expiring before or after now, and sometimes an edge up that closes
// a cycle.
func folderTree(rng *rand.Rand, s *schema.Schema, ids map[string][]string, now time.Time) []graph.Relationship {
	folders := ids["folder"]
	var rels []graph.Relationship
	seen := map[graph.Key]bool{}
	add := func(c, p string) {
		r := graph.Relationship{Resource: graph.ObjectRef{Type: "folder", ID: c}, Relation: "parent",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: p}}}
		if seen[r.Key()] {
			return
		}
		seen[r.Key()] = true
		if allowsExpiration(s, "folder", "parent") {
			switch rng.IntN(5) {
			case 0:
				t := now.Add(-time.Hour)
				r.Expiration = &t
			case 1, 2:
				t := now.Add(time.Duration(1+rng.IntN(3)) * time.Hour)
				r.Expiration = &t
			}
		}
		rels = append(rels, r)
	}
	for i := 1; i < len(folders); i++ {
		if rng.IntN(6) > 0 {
			add(folders[i], folders[rng.IntN(i)])
		}
		if rng.IntN(5) == 0 {
			add(folders[i], folders[rng.IntN(i)])
		}
	}
	if rng.IntN(4) == 0 {
		i := rng.IntN(len(folders))
		add(folders[i], folders[i+rng.IntN(len(folders)-i)])
	}
	return rels
}

// allowsExpiration reports whether relation rel of typ allows an expiring
// relationship to a plain object of typ.
func allowsExpiration(s *schema.Schema, typ, rel string) bool {
	for _, a := range s.Definitions[typ].Relations[rel].Allowed {
		if a.Type == typ && a.Relation == "" && a.Expiration {
			return true
		}
	}
	return false
}

// TestAncestorIndexAgainstWalk compares permissions recursive over a
// parent relation answered from the index's lineages with the walk, on
// random folder trees (several parents, expiring parents, cycles) at
// random revisions of a history of writes that move folders around, at
// instants before and after some parents expire: the answers and missing
// caveat parameters are the walk's, and so are the explain paths; an
// until that is not the walk's must hold (checkUntil).
func TestAncestorIndexAgainstWalk(t *testing.T) {
	rng := referenceRNG(t, 3)
	ctx := context.Background()
	var hits uint64
	for worlds := 0; worlds < referenceIterations(t)/2; {
		src, ids := ancestorWorld(rng)
		s, err := schema.Compile("random.zed", src)
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		worlds++
		now := time.Now().Add(time.Hour).Truncate(time.Second)
		rels := append(folderTree(rng, s, ids, now), randomRelationships(rng, s, ids, now)...)
		seen := map[graph.Key]bool{}
		rels = slices.DeleteFunc(rels, func(r graph.Relationship) bool { k := seen[r.Key()]; seen[r.Key()] = true; return k })
		w := newReachWorld(t, src, s, ids, rels)
		// Each indexed engine is compared with a walking one configured
		// alike: the result cache and chunking have their own effect on
		// untils (a cached "no" keeps the until it was computed with).
		// A low depth limit meets the longer chains, which the index
		// must leave to the walk to report (or to answer, when a grant
		// lies above the limit).
		configs := []Config{{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true}, {ChunkSize: 2},
			{MaxDepth: 4 + rng.IntN(3), CacheEntries: -1, ReadCacheBytes: -1}}
		var indexed, walked []*Engine
		for _, cfg := range configs {
			cfg.Reach = w.idx
			indexed = append(indexed, New(cfg))
			cfg.Reach = holdersOnly{w.idx}
			walked = append(walked, New(cfg))
		}
		for round := range 5 {
			if round > 0 {
				w.write(w.moveFolders(rng, s, now))
			}
			if rng.IntN(4) > 0 {
				w.caughtUp(w.revs[len(w.revs)-1])
			}
			for _, rev := range []storage.Revision{w.revs[len(w.revs)-1], w.revs[rng.IntN(len(w.revs))]} {
				at := now.Add(time.Duration(rng.IntN(4)-1) * 90 * time.Minute)
				if w.compareAncestors(ctx, indexed, walked, rev, at, rng) {
					return
				}
			}
		}
		hits += w.idx.Stats().AncestorHits
	}
	if hits == 0 {
		t.Errorf("the index answered no lineage")
	}
	t.Logf("lineages answered: %d", hits)
}

// moveFolders draws a few writes to the folder tree: a new parent
// (possibly expiring, possibly closing a cycle), a deleted one, and now
// and then another relationship.
func (w *reachWorld) moveFolders(rng *rand.Rand, s *schema.Schema, now time.Time) []storage.Mutation {
	var muts []storage.Mutation
	seen := map[graph.Key]bool{}
	fresh := folderTree(rng, s, w.ids, now)
	if rng.IntN(3) == 0 {
		fresh = append(fresh, randomRelationships(rng, s, w.ids, now)...)
	}
	for n := 1 + rng.IntN(3); n > 0 && len(fresh) > 0; n-- {
		r := fresh[rng.IntN(len(fresh))]
		if !seen[r.Key()] {
			seen[r.Key()] = true
			muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: r})
		}
	}
	stored := slices.Collect(maps.Values(w.cur))
	slices.SortFunc(stored, func(a, b graph.Relationship) int { return strings.Compare(a.String(), b.String()) })
	for n := rng.IntN(3); n > 0 && len(stored) > 0; n-- {
		r := stored[rng.IntN(len(stored))]
		if !seen[r.Key()] {
			seen[r.Key()] = true
			muts = append(muts, storage.Mutation{Op: storage.OpDelete, Relationship: r})
		}
	}
	return muts
}

// compareAncestors checks every permission of every folder and document
// for every user at rev and instant at with the indexed engines and the
// walk; it reports whether anything differed.
func (w *reachWorld) compareAncestors(ctx context.Context, indexed, walked []*Engine, rev storage.Revision, at time.Time, rng *rand.Rand) bool {
	t := w.t
	reader, err := w.store.eng.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	snap := Snapshot{Schema: w.s, Reader: reader}
	var rctx map[string]any
	if rng.IntN(2) == 0 {
		rctx = map[string]any{"x": 7}
	}
	failed := false
	fail := func(format string, args ...any) {
		if !failed {
			t.Errorf("schema:\n%s\nrevision %d at %s, relationships:\n%s", w.src, rev, at, relsString(w.states[rev]))
		}
		failed = true
		t.Errorf(format, args...)
	}
	for _, uid := range w.ids["user"] {
		sub := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: uid}}
		for _, typ := range []string{"folder", "doc"} {
			for _, perm := range []string{"view", "edit"} {
				// LookupResources checks its candidates in batches, whose
				// objects may lie on one another's chains.
				for ei, e := range indexed {
					req := LookupResourcesRequest{ResourceType: typ, Permission: perm, Subject: sub, Context: rctx, Now: at}
					got, want := map[string]Permissionship{}, map[string]Permissionship{}
					err1 := e.LookupResources(ctx, snap, req, func(r ResourceResult) bool { got[r.ID] = r.Permissionship; return true })
					err2 := walked[ei].LookupResources(ctx, snap, req, func(r ResourceResult) bool { want[r.ID] = r.Permissionship; return true })
					if errors.Is(err2, ErrMaxDepth) && err1 == nil { // as for checks, below
						clear(want)
						err2 = walked[0].LookupResources(ctx, snap, req, func(r ResourceResult) bool { want[r.ID] = r.Permissionship; return true })
					}
					if (err1 != nil) != (err2 != nil) || !maps.Equal(got, want) {
						fail("lookup resources %s#%s@%s engine %d: %v (%v), walk %v (%v)", typ, perm, sub, ei, got, err1, want, err2)
					}
				}
				for _, oid := range w.ids[typ] {
					res := graph.ObjectRef{Type: typ, ID: oid}
					for ei, e := range indexed {
						want, werr := walked[ei].answerAt(ctx, snap, sub, rctx, res, perm, at)
						got, err := e.answerAt(ctx, snap, sub, rctx, res, perm, at)
						if errors.Is(werr, ErrMaxDepth) && err == nil {
							// The index needs fewer levels than the walk, so
							// under a low depth limit it may answer what the
							// walk cannot: the answer must be that of a walk
							// without the low limit.
							want, werr = walked[0].answerAt(ctx, snap, sub, rctx, res, perm, at)
						}
						if (err != nil) != (werr != nil) || got.perm != want.perm || !slices.Equal(got.missing, want.missing) {
							fail("%s#%s@%s engine %d: %v until %d missing %v (%v), walk %v until %d missing %v (%v)",
								res, perm, sub, ei, got.perm, got.until, got.missing, err, want.perm, want.until, want.missing, werr)
						}
						if err == nil && got.until != want.until {
							w.checkUntil(ctx, walked[0], snap, rev, sub, rctx, res, perm, at, got, fail)
						}
					}
					if rng.IntN(8) == 0 {
						req := Request{Resource: res, Permission: perm, Subject: sub, Context: rctx, Now: at, Explain: true}
						a, err1 := indexed[0].Check(ctx, snap, req)
						b, err2 := walked[0].Check(ctx, snap, req)
						if (err1 != nil) != (err2 != nil) || a.Path.String() != b.Path.String() {
							fail("explain %s#%s@%s: %v (%v), walk %v (%v)", res, perm, sub, a.Path, err1, b.Path, err2)
						}
					}
				}
			}
		}
	}
	return failed
}

// checkUntil checks an answer whose until differs from the walk's. An
// until only promises that the answer holds unchanged up to it, and a walk
// that stops at its first granting branch promises less than the index,
// which sees every ancestor's: so the answer must be the walk's at every
// expiration instant of rev's relationships in [at, until).
func (w *reachWorld) checkUntil(ctx context.Context, walk *Engine, snap Snapshot, rev storage.Revision, sub graph.SubjectRef, rctx map[string]any,
	res graph.ObjectRef, perm string, at time.Time, got outcome, fail func(string, ...any)) {
	for _, r := range w.states[rev] {
		if r.Expiration == nil {
			continue
		}
		e := r.Expiration.UnixNano()
		if e <= at.UnixNano() || e >= got.until {
			continue
		}
		then, err := walk.answerAt(ctx, snap, sub, rctx, res, perm, time.Unix(0, e))
		if err != nil || then.perm != got.perm || !slices.Equal(then.missing, got.missing) {
			fail("%s#%s@%s: %v until %d, but the walk at %d (an expiration before it) answers %v missing %v (%v)",
				res, perm, sub, got.perm, got.until, e, then.perm, then.missing, err)
		}
	}
}
