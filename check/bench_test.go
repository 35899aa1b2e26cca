package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"

	"github.com/pembadb/pemba/internal/cputime"
)

// The nested-org graph of BENCHMARKS.md, at scale k (k=1: 1000 users, 100
// groups, 200 folders, 3000 documents):
//   - group g contains groups 2g+1 and 2g+2 and 20 users;
//   - folders form a ternary tree (folder i's parent is (i-1)/3), each with
//     2 group viewers and 2 user viewers;
//   - every document has a parent folder and an owner, every third a
//     direct viewer.
const nestedOrgSchema = `
definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation parent: folder
	relation viewer: user | group#member
	relation owner: user
	permission view = viewer + owner + parent->view
}
definition document {
	relation parent: folder
	relation viewer: user | group#member
	relation owner: user
	permission view = viewer + owner + parent->view
}`

type nestedOrg struct {
	users, groups, folders, documents int
	rels                              []graph.Relationship
}

func newNestedOrg(scale int) *nestedOrg {
	o := &nestedOrg{users: 1000 * scale, groups: 100 * scale, folders: 200 * scale, documents: 3000 * scale}
	rng := rand.New(rand.NewPCG(42, 7))
	user := func(i int) graph.SubjectRef {
		return graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", i)}}
	}
	group := func(i int) graph.SubjectRef {
		return graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: fmt.Sprintf("g%d", i)}, Relation: "member"}
	}
	add := func(typ, id, rel string, s graph.SubjectRef) {
		o.rels = append(o.rels, graph.Relationship{Resource: graph.ObjectRef{Type: typ, ID: id}, Relation: rel, Subject: s})
	}
	for g := 0; g < o.groups; g++ {
		id := fmt.Sprintf("g%d", g)
		for _, c := range []int{2*g + 1, 2*g + 2} {
			if c < o.groups {
				add("group", id, "member", group(c))
			}
		}
		for j := 0; j < 20; j++ {
			add("group", id, "member", user((g*20+j)%o.users))
		}
	}
	for f := 0; f < o.folders; f++ {
		id := fmt.Sprintf("f%d", f)
		if f > 0 {
			add("folder", id, "parent", graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: fmt.Sprintf("f%d", (f-1)/3)}})
		}
		g1 := rng.IntN(o.groups)
		g2 := (g1 + 1 + rng.IntN(o.groups-1)) % o.groups
		add("folder", id, "viewer", group(g1))
		add("folder", id, "viewer", group(g2))
		u1 := rng.IntN(o.users)
		u2 := (u1 + 1 + rng.IntN(o.users-1)) % o.users
		add("folder", id, "viewer", user(u1))
		add("folder", id, "viewer", user(u2))
	}
	for d := 0; d < o.documents; d++ {
		id := fmt.Sprintf("d%d", d)
		add("document", id, "parent", graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: fmt.Sprintf("f%d", rng.IntN(o.folders))}})
		add("document", id, "owner", user(rng.IntN(o.users)))
		if d%3 == 0 {
			add("document", id, "viewer", user(rng.IntN(o.users)))
		}
	}
	return o
}

// benchWorld is a nested-org graph loaded into the test datastore.
type benchWorld struct {
	org   *nestedOrg
	snap  Snapshot
	store *testStore
}

var (
	benchOnce   [2]sync.Once
	benchWorlds [2]*benchWorld
)

// loadNestedOrg builds (once per process) the graph at scale 1 or 100.
// The ×100 graph is built only by the benchmarks that ask for it.
func loadNestedOrg(b testing.TB, big bool) *benchWorld {
	i, scale := 0, 1
	if big {
		i, scale = 1, 100
	}
	benchOnce[i].Do(func() {
		s, err := schema.Compile("nested-org.zed", nestedOrgSchema)
		if err != nil {
			b.Fatal(err)
		}
		org := newNestedOrg(scale)
		store := openTestStore(b)
		store.write(b, org.rels)
		benchWorlds[i] = &benchWorld{org: org, store: store, snap: Snapshot{Schema: s, Reader: store.reader(b)}}
	})
	if benchWorlds[i] == nil {
		b.Fatal("nested-org graph failed to build")
	}
	return benchWorlds[i]
}

// randomChecks returns n random (document, user) view checks.
func (w *benchWorld) randomChecks(n int, seed uint64) []Request {
	rng := rand.New(rand.NewPCG(seed, 3))
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{
			Resource:   graph.ObjectRef{Type: "document", ID: fmt.Sprintf("d%d", rng.IntN(w.org.documents))},
			Permission: "view",
			Subject:    graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(w.org.users))}},
			Now:        goldenNow,
		}
	}
	return reqs
}

// checkCache says which caches a check benchmark runs with.
type checkCache int

const (
	// cold: neither cache; every check evaluates from storage.
	cold checkCache = iota
	// readsWarm: no result cache, but the read cache has seen the graph:
	// every check evaluates, from relationships held in memory.
	readsWarm
	// warm: 1024 distinct checks repeat, all of whose sub-problems fit in
	// the default result cache.
	warm
)

func benchCheck(b *testing.B, big bool, mode checkCache) {
	w := loadNestedOrg(b, big)
	var e *Engine
	reqs := w.randomChecks(4096, 1)
	switch mode {
	case cold:
		e = New(Config{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: os.Getenv("PEMBA_BENCH_NO_SINGLEFLIGHT") != ""})
	case readsWarm:
		e = New(Config{CacheEntries: -1, ReadCacheBytes: 1 << 30})
	case warm:
		reqs = reqs[:1024]
		e = New(Config{})
	}
	runCheckBench(b, e, w.snap, reqs, mode)
}

// runCheckBench measures e checking reqs in turn, after one pass over
// them unless mode is cold, and reports the share granted, the queries
// (and those the read cache did not answer) and the process's CPU per
// check.
func runCheckBench(b *testing.B, e *Engine, snap Snapshot, reqs []Request, mode checkCache) {
	ctx := context.Background()
	if mode != cold {
		for _, r := range reqs {
			if _, err := e.Check(ctx, snap, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	granted := 0
	s0 := e.Stats()
	cpu0 := cputime.Process()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r, err := e.Check(ctx, snap, reqs[i%len(reqs)])
		if err != nil {
			b.Fatal(err)
		}
		if r.Permissionship == HasPermission {
			granted++
		}
	}
	s1 := e.Stats()
	b.ReportMetric(float64(granted)/float64(b.N), "granted/op")
	b.ReportMetric(float64(s1.Queries-s0.Queries)/float64(b.N), "queries/op")
	// The read cache counts objects, not queries: a batch of objects is
	// one query, and each object it does not hold is read from storage.
	b.ReportMetric(float64(s1.ReadCacheMisses-s0.ReadCacheMisses)/float64(b.N), "read-cache-misses/op")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkCheckNestedOrg(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchCheck(b, false, cold) })
	b.Run("reads-warm", func(b *testing.B) { benchCheck(b, false, readsWarm) })
	b.Run("warm", func(b *testing.B) { benchCheck(b, false, warm) })
}

func BenchmarkCheckNestedOrgX100(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchCheck(b, true, cold) })
	b.Run("reads-warm", func(b *testing.B) { benchCheck(b, true, readsWarm) })
	b.Run("warm", func(b *testing.B) { benchCheck(b, true, warm) })
}

func benchLookupResources(b *testing.B, big bool) {
	w := loadNestedOrg(b, big)
	ctx := context.Background()
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	reqs := w.randomChecks(256, 2)
	ids := 0
	var first time.Duration // summed over the lookups: time to the first result
	cpu0 := cputime.Process()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start, seen := time.Now(), false
		err := e.LookupResources(ctx, w.snap, LookupResourcesRequest{ResourceType: "document", Permission: "view", Subject: reqs[i%len(reqs)].Subject, Now: goldenNow},
			func(ResourceResult) bool {
				if !seen {
					first, seen = first+time.Since(start), true
				}
				ids++
				return true
			})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ids)/float64(b.N), "ids/op")
	b.ReportMetric(float64(ids)/b.Elapsed().Seconds(), "ids/s")
	b.ReportMetric(float64(first.Nanoseconds())/float64(b.N), "first-ns/op")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkLookupResourcesNestedOrg(b *testing.B)     { benchLookupResources(b, false) }
func BenchmarkLookupResourcesNestedOrgX100(b *testing.B) { benchLookupResources(b, true) }

// benchLookupSubjects lists the users who can view a random document,
// with no cross-request cache.
func benchLookupSubjects(b *testing.B, big bool) {
	w := loadNestedOrg(b, big)
	ctx := context.Background()
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	reqs := w.randomChecks(256, 4)
	subjects := 0
	queries0 := e.Stats().Queries
	cpu0 := cputime.Process()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		err := e.LookupSubjects(ctx, w.snap, LookupSubjectsRequest{Resource: reqs[i%len(reqs)].Resource, Permission: "view", SubjectType: "user", Now: goldenNow},
			func(SubjectResult) bool { subjects++; return true })
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(subjects)/float64(b.N), "subjects/op")
	b.ReportMetric(float64(e.Stats().Queries-queries0)/float64(b.N), "queries/op")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkLookupSubjectsNestedOrg(b *testing.B)     { benchLookupSubjects(b, false) }
func BenchmarkLookupSubjectsNestedOrgX100(b *testing.B) { benchLookupSubjects(b, true) }

// BenchmarkCheckNestedOrgParallel runs random checks from 8 goroutines
// per GOMAXPROCS (as a server's workers would), with the read cache warm
// and no result cache — or, x100/result-cache, with one, over 262,144
// distinct checks it mostly misses, as on a large graph: run with -cpu
// 1,2 to see whether evaluation scales with cores, and with
// -mutexprofile/-blockprofile for what holds it back.
func BenchmarkCheckNestedOrgParallel(b *testing.B) {
	for _, c := range []struct {
		name   string
		big    bool
		cached bool // with the result cache, on checks it mostly misses
	}{{"x1", false, false}, {"x100", true, false}, {"x100/result-cache", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			w := loadNestedOrg(b, c.big)
			ctx := context.Background()
			e := New(Config{CacheEntries: -1, ReadCacheBytes: 1 << 30})
			reqs := w.randomChecks(4096, 1)
			warm := reqs
			if c.cached {
				e = New(Config{ReadCacheBytes: 1 << 30})
				reqs = w.randomChecks(1<<18, 1)
				warm = reqs[:4096]
			}
			for _, r := range warm {
				if _, err := e.Check(ctx, w.snap, r); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			cpu0 := cputime.Process()
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.Check(ctx, w.snap, reqs[int(next.Add(1))%len(reqs)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
