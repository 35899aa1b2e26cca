package check

import (
	"context"
	"testing"

	"github.com/pembadb/pemba/check/reach"
)

// BenchmarkCheckNestedOrgReach is BenchmarkCheckNestedOrg{,X100}/cold and
// reads-warm with a reachability index built at the snapshot: the
// subject's nested groups are one lookup instead of a reverse closure,
// and a document's folder chain one lineage instead of a dispatch per
// level.
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
	runCheckBench(b, e, w.snap, reqs, mode)
	if st := idx.Stats(); st.Hits == 0 {
		b.Fatalf("the index answered nothing: %+v", st)
	}
	// Dispatched problems per check, over a fixed sample.
	s0 := e.Stats()
	for _, r := range reqs[:256] {
		if _, err := e.Check(ctx, w.snap, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.Stats().Dispatches-s0.Dispatches)/256, "dispatches/op")
}
