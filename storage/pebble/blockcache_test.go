package pebble

import (
	"runtime"
	"testing"
)

// TestShardedBlockCacheRaisesGOMAXPROCSOnlyForTheCall checks that the
// block cache is made with enough processors for blockCacheShards shards
// when its size allows them, and that GOMAXPROCS is what it was
// afterwards, whether it was the runtime's default or set by hand.
func TestShardedBlockCacheRaisesGOMAXPROCSOnlyForTheCall(t *testing.T) {
	t.Cleanup(runtime.SetDefaultGOMAXPROCS)
	for _, tc := range []struct {
		name       string
		set        int // GOMAXPROCS before the call; 0 keeps the default
		size       int64
		wantDuring func(before int) int
	}{
		{"default cache, default procs", 0, 256 << 20, func(before int) int { return max(before, blockCacheProcs) }},
		{"default cache, procs set by hand", 3, 256 << 20, func(int) int { return blockCacheProcs }},
		{"default cache, procs already enough", 2 * blockCacheProcs, 256 << 20, func(before int) int { return before }},
		{"cache too small for more shards", 3, blockCacheShards*pebbleMinShardBytes - 1, func(before int) int { return before }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.SetDefaultGOMAXPROCS()
			if tc.set > 0 {
				runtime.GOMAXPROCS(tc.set)
			}
			before := runtime.GOMAXPROCS(0)
			var during int
			got := newShardedBlockCache(tc.size, func(size int64) int64 {
				during = runtime.GOMAXPROCS(0)
				return size
			})
			if got != tc.size {
				t.Errorf("newShardedBlockCache returned %d, want newCache's %d", got, tc.size)
			}
			if want := tc.wantDuring(before); during != want {
				t.Errorf("GOMAXPROCS during newCache = %d, want %d", during, want)
			}
			if after := runtime.GOMAXPROCS(0); after != before {
				t.Errorf("GOMAXPROCS after = %d, want %d as before", after, before)
			}
		})
	}
}
