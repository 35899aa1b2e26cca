package pebble

import (
	"runtime"
	"sync"
)

// Pebble's block cache is split into shards, each behind its own lock,
// and Pebble makes four per processor (runtime.GOMAXPROCS) unless a shard
// would then hold less than pebbleMinShardBytes. On a small machine that
// is few: 8 shards on 2 cores. A block-cache miss inserts its block under
// the shard's write lock, and when the cores are busy the goroutine
// holding it is often descheduled, so every reader of that eighth of the
// cache waits; on a store much larger than the cache (identity-platform
// ×10) reads spent about a tenth of their time so.
const (
	// blockCacheShards is the fewest shards the block cache is given
	// when its size allows.
	blockCacheShards = 64
	// pebbleShardsPerProcessor is how many shards Pebble makes per
	// processor, so blockCacheProcs processors give blockCacheShards.
	pebbleShardsPerProcessor = 4
	blockCacheProcs          = blockCacheShards / pebbleShardsPerProcessor
	// pebbleMinShardBytes is Pebble's smallest shard: below it, Pebble
	// uses four shards whatever the processor count.
	pebbleMinShardBytes = 4 << 20
)

// gomaxprocsMu serializes the engines that raise GOMAXPROCS while their
// block cache is made, so each restores the value it found.
var gomaxprocsMu sync.Mutex

// newShardedBlockCache calls newCache (pebble.NewCache) for a cache of
// size bytes with at least blockCacheShards shards when size allows
// shards of pebbleMinShardBytes. Pebble exposes no shard count, only the
// processor count it derives one from, so GOMAXPROCS is raised for the
// call and then restored: to the runtime's default, which keeps following
// the machine, when that was its value, or else to the value set before.
// It is called once per engine, when the store is opened.
func newShardedBlockCache[C any](size int64, newCache func(int64) C) C {
	if size/blockCacheShards < pebbleMinShardBytes {
		return newCache(size)
	}
	gomaxprocsMu.Lock()
	defer gomaxprocsMu.Unlock()
	prev := runtime.GOMAXPROCS(0)
	if prev >= blockCacheProcs {
		return newCache(size)
	}
	runtime.GOMAXPROCS(blockCacheProcs)
	defer restoreGOMAXPROCS(prev)
	return newCache(size)
}

// restoreGOMAXPROCS sets GOMAXPROCS back to prev, preferring the
// runtime's default (runtime.SetDefaultGOMAXPROCS) when it equals prev, so
// the default keeps tracking the machine's CPU limit.
func restoreGOMAXPROCS(prev int) {
	runtime.SetDefaultGOMAXPROCS()
	if runtime.GOMAXPROCS(0) != prev {
		runtime.GOMAXPROCS(prev)
	}
}
