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
	runCheckBench(b, New(cfg), w.snap, w.randomChecks(4096, 1), mode)
	if st := idx.Stats(); st.Hits == 0 {
		b.Fatalf("the index answered nothing: %+v", st)
	}
}
