package readcache

import (
	"sync"
	"sync/atomic"
)

// cacheShard holds the entries whose keys hash to it, bounded by its share
// of the byte budget, and evicts with the CLOCK algorithm: a hit only marks
// its entry referenced, and eviction sweeps the entries in slot order,
// sparing (and unmarking) the referenced ones. Against an LRU list a hit
// writes no shared pointers and takes the lock shared, and the entries
// are one array: the index maps a key's 64-bit hash to its slot, so it
// holds no pointers for the collector to scan, and an entry costs no
// allocation of its own. The key is kept in the slot and compared on
// every hit, so two keys with one hash never share an entry: the newer
// replaces the older.
type cacheShard struct {
	maxBytes int64
	mu       sync.RWMutex // guards every field below; ref bits change under the read lock, atomically
	index    map[uint64]int32
	slots    []slot
	// refs holds each slot's state (empty, cold or referenced) apart from
	// the slots, so a sweep reads 4 bytes a slot from one dense array
	// instead of a cache line each: the sweep runs under the exclusive
	// lock, and a long one would stall every lookup of the shard.
	refs  []uint32
	free  []int32 // empty slots below len(slots)
	hand  int     // the next slot the sweep looks at
	bytes int64
	// absent, when not nil, keeps the shard's empty results apart from
	// its entries, in a table of its own budget (see absentTable).
	absent *absentTable
	_      [32]byte // keep shards' locks on their own cache lines
}

// slot is one entry of a shard.
type slot struct {
	key  string
	hash uint64
	entry
}

// States of a slot in refs, accessed atomically: a hit turns cold into
// referenced, and the sweep referenced into cold, or cold into empty.
const (
	slotEmpty uint32 = iota
	slotCold
	slotReferenced
)

// init sets the shard's budgets: maxBytes for its entries and
// absentBytes for a table of empty results (0: they are entries too).
func (sh *cacheShard) init(maxBytes, absentBytes int64) {
	sh.maxBytes, sh.index = maxBytes, make(map[uint64]int32)
	sh.absent = newAbsentTable(absentBytes)
}

// get returns the entry of key, whose hash is h, and marks it referenced.
func (sh *cacheShard) get(key string, h uint64) (entry, bool) {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.getLocked(key, h)
}

// getLocked is get for a caller holding the lock, shared or not.
func (sh *cacheShard) getLocked(key string, h uint64) (entry, bool) {
	i, ok := sh.index[h]
	if !ok {
		return entry{}, false
	}
	s := &sh.slots[i]
	if s.key != key {
		return entry{}, false
	}
	if ref := &sh.refs[i]; atomic.LoadUint32(ref) == slotCold {
		atomic.StoreUint32(ref, slotReferenced)
	}
	return s.entry, true
}

// put stores e under key, whose hash is h, unless the entry already held
// for key was read at a newer revision (reads at the head want it), and
// evicts until the shard fits its budget. e.size must not exceed it.
func (sh *cacheShard) put(key string, h uint64, e entry) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.putLocked(key, h, e)
}

// putLocked is put for a caller holding the exclusive lock.
func (sh *cacheShard) putLocked(key string, h uint64, e entry) {
	if i, ok := sh.index[h]; ok {
		if s := &sh.slots[i]; s.key == key && s.rev > e.rev {
			return
		}
		// A stale entry for key, or another key with the same hash.
		sh.drop(i)
	}
	for sh.bytes+e.size > sh.maxBytes && sh.evict() {
	}
	var i int32
	if n := len(sh.free); n > 0 {
		i, sh.free = sh.free[n-1], sh.free[:n-1]
	} else {
		i = int32(len(sh.slots))
		sh.slots = append(sh.slots, slot{})
		sh.refs = append(sh.refs, slotEmpty)
	}
	sh.slots[i] = slot{key: key, hash: h, entry: e}
	atomic.StoreUint32(&sh.refs[i], slotCold)
	sh.index[h] = i
	sh.bytes += e.size
}

// evict drops the first unreferenced entry from the hand on, unmarking
// the referenced ones it passes; it reports false when the shard is empty.
func (sh *cacheShard) evict() bool {
	if len(sh.index) == 0 {
		return false
	}
	for {
		if sh.hand >= len(sh.slots) {
			sh.hand = 0
		}
		i := sh.hand
		sh.hand++
		switch ref := &sh.refs[i]; atomic.LoadUint32(ref) {
		case slotReferenced:
			atomic.StoreUint32(ref, slotCold)
		case slotCold:
			sh.drop(int32(i))
			return true
		}
	}
}

// drop empties slot i, which holds an entry.
func (sh *cacheShard) drop(i int32) {
	s := &sh.slots[i]
	delete(sh.index, s.hash)
	sh.bytes -= s.size
	*s = slot{}
	atomic.StoreUint32(&sh.refs[i], slotEmpty)
	sh.free = append(sh.free, i)
}

// stats returns the shard's entry count and estimated bytes, its empty
// results in a table of their own included.
func (sh *cacheShard) stats() (int, int64) {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	n, b := len(sh.index), sh.bytes
	if sh.absent != nil {
		n += sh.absent.entries
		b += int64(sh.absent.entries) * absentSlotBytes
	}
	return n, b
}
