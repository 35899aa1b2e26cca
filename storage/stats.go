package storage

// StoreStats are an engine's own figures about how it keeps its data: its
// block cache and its on-disk layout. Engines that keep such things (the
// embedded one) report them through a StoreStats method; the server exports
// them as metrics.
type StoreStats struct {
	// BlockCacheBytes is the memory the block cache holds now, and
	// BlockCacheHits and BlockCacheMisses count its lookups since the
	// store was opened: a miss reads (and decompresses) a block from the
	// store's files.
	BlockCacheBytes  int64
	BlockCacheHits   int64
	BlockCacheMisses int64
	// ReadAmplification is how many sorted runs a read may consult: the
	// levels and level-0 sublevels that hold data.
	ReadAmplification int
	// LevelBytes and LevelTables are the size and number of the store's
	// table files, level by level (level 0 first).
	LevelBytes  []int64
	LevelTables []int64
	// CompactionDebtBytes estimates the bytes compaction must still
	// rewrite to reach a settled shape.
	CompactionDebtBytes uint64
}
