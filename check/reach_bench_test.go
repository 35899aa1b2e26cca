package check

import (
	"context"
	"testing"

	"github.com/pembadb/pemba/check/reach"
)

// BenchmarkCheckNestedOrgReach is BenchmarkCheckNestedOrg{,X100}/cold and
// reads-warm with a reachability index built at the snapshot: the
// subject's nested groups are one lookup instead of a reverse closure.
func BenchmarkCheckNestedOrgReach(b *testing.B) {
	for _, big := range []bool{false, true} {
		name := "x1"
		if big {
			name = "x100"
		}
		for _, mode := range []checkCache{cold, readsWarm} {
			sub := name + "/cold"
			if mode == readsWarm {
				sub = name + "/reads-warm"
			}
			b.Run(sub, func(b *testing.B) { benchCheckReach(b, big, mode) })
		}
	}
}

func benchCheckReach(b *testing.B, big bool, mode checkCache) {
	w := loadNestedOrg(b, big)
	ctx := context.Background()
	idx := reach.New(reach.Options{})
	if err := idx.Build(ctx, w.snap.Schema, w.snap.Reader); err != nil {
		b.Fatal(err)
	}
	cfg := Config{CacheEntries: -1, ReadCacheBytes: -1, Reach: idx}
	if mode == readsWarm {
		cfg.ReadCacheBytes = 1 << 30
	}
	e := New(cfg)
	reqs := w.randomChecks(4096, 1)
	if mode != cold {
		for _, r := range reqs {
			if _, err := e.Check(ctx, w.snap, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	granted := 0
	s0 := e.Stats()
	cpu0 := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r, err := e.Check(ctx, w.snap, reqs[i%len(reqs)])
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
	b.ReportMetric(float64(s1.Queries-s0.Queries-(s1.ReadCacheHits-s0.ReadCacheHits))/float64(b.N), "storage-queries/op")
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if st := idx.Stats(); st.Hits == 0 {
		b.Fatalf("the index answered nothing: %+v", st)
	}
}
