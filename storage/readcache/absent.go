package readcache

import (
	"sync/atomic"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// absentTable holds a shard's empty results: the queries that found no
// rows. On a large graph most queries of some relations find nothing
// (most people have no AI agent, most teams no sub-team), and an arrow
// asks them once per object: a team's member->delegate reads every
// member's delegates. As entries of the shard's CLOCK, with their keys,
// such results cost about 140 bytes each; here a result is 36 bytes with
// no allocation, so the same memory remembers four times as many.
//
// A slot keeps no key, only two 64-bit hashes of it under independent
// random seeds: two queries share a slot only if both hashes agree,
// which for any two keys happens with probability 2⁻¹²⁸, and no request
// can aim at it without the seeds, which never leave the process.
//
// The table is set-associative: a key may take one of the absentWays
// slots of the set its hash picks, and a full set evicts with CLOCK, as
// the shard does (a hit marks its slot referenced; the sweep spares and
// unmarks referenced slots). It is guarded by its shard's lock: slots
// change under the exclusive lock, states also under the shared one.
type absentTable struct {
	slots []absentSlot
	// refs holds each slot's state (slotEmpty, slotCold or slotReferenced).
	refs    []uint32
	entries int
}

// absentSlot is one empty result: the query's key hashes, the revision
// it was read at, and the instant (UnixNano). An empty result never
// expires, so it is exact at its revision for every instant from then.
type absentSlot struct {
	hash, check uint64
	rev         storage.Revision
	at          int64
}

// absentWays is the number of slots of a set; absentSlotBytes what one
// slot and its state take.
const (
	absentWays      = 4
	absentSlotBytes = 36
)

// noRows is the rows of an empty result: not nil, which callers of
// QueryRelationObjectsUpTo read as a result left out.
var noRows = []graph.Relationship{}

// newAbsentTable returns a table of at most maxBytes, or nil when that
// holds no set.
func newAbsentTable(maxBytes int64) *absentTable {
	sets := maxBytes / (absentWays * absentSlotBytes)
	if sets <= 0 {
		return nil
	}
	n := sets * absentWays
	return &absentTable{slots: make([]absentSlot, n), refs: make([]uint32, n)}
}

// set returns the index of the first slot of hash's set.
func (t *absentTable) set(hash uint64) int {
	// The shard was picked by hash modulo the shard count; the high bits
	// pick the set, so the shards' sets are all used.
	return int((hash>>32)%uint64(len(t.slots)/absentWays)) * absentWays
}

// get returns the revision and instant of the empty result whose key
// hashes are hash and check, and marks it referenced.
func (t *absentTable) get(hash, check uint64) (storage.Revision, int64, bool) {
	base := t.set(hash)
	for i := base; i < base+absentWays; i++ {
		s := &t.slots[i]
		ref := &t.refs[i]
		if s.hash != hash || s.check != check {
			continue
		}
		state := atomic.LoadUint32(ref)
		if state == slotEmpty {
			continue
		}
		if state == slotCold {
			atomic.StoreUint32(ref, slotReferenced)
		}
		return s.rev, s.at, true
	}
	return 0, 0, false
}

// put stores an empty result read at rev and instant at, unless the set
// already holds the key's result at a newer revision.
func (t *absentTable) put(hash, check uint64, rev storage.Revision, at int64) {
	base := t.set(hash)
	victim := -1
	for i := base; i < base+absentWays; i++ {
		if atomic.LoadUint32(&t.refs[i]) == slotEmpty {
			if victim < 0 {
				victim = i
			}
			continue
		}
		if s := &t.slots[i]; s.hash == hash && s.check == check {
			if s.rev > rev {
				return
			}
			victim = i
			break
		}
	}
	if victim < 0 {
		victim = t.sweep(base, int(check%absentWays))
	}
	if atomic.LoadUint32(&t.refs[victim]) == slotEmpty {
		t.entries++
	}
	t.slots[victim] = absentSlot{hash: hash, check: check, rev: rev, at: at}
	atomic.StoreUint32(&t.refs[victim], slotCold)
}

// sweep returns the slot of the full set at base to evict: the first cold
// one from way start on, unmarking the referenced ones it passes, so two
// passes always find one.
func (t *absentTable) sweep(base, start int) int {
	for k := 0; ; k++ {
		i := base + (start+k)%absentWays
		ref := &t.refs[i]
		if atomic.LoadUint32(ref) == slotCold {
			return i
		}
		atomic.StoreUint32(ref, slotCold)
	}
}
