package reach

import (
	"slices"
	"unsafe"
)

// maxLevel is the longest chain a holders entry records; longer ones are
// recorded as maxLevel, which lies beyond any depth limit an evaluator
// would use, so the evaluator's decision (the chain is too deep) is the
// same.
const maxLevel = 1<<16 - 1

// holders is a subject's flattened membership in compact form: the
// objects holding it, sorted by number, the length of each one's
// shortest chain, and — only when some chain expires — each one's until
// (6 bytes an object for a membership that never expires, 14 otherwise).
type holders struct {
	objs   []uint32
	levels []uint16
	until  []int64 // nil when every entry holds for good
}

// holderChunkWords is the size, in eight-byte words, of the chunks a
// holderStore carves holders from; holders larger than an eighth of it
// get an allocation of their own.
const holderChunkWords = 32 << 10

// compactAfterWords is the least dead space, in words, that makes a
// holderStore compact.
const compactAfterWords = 1 << 19

// holderStore carves the holders of one relation's subjects out of large
// chunks: a million subjects' holders are then a few hundred objects to
// the garbage collector instead of a million, each its own object to mark
// on every cycle. Holders are never written once packed, since readers
// keep them after the index's lock is released; replaced ones stay in
// their chunk as dead space until the store holds more dead than live
// words, when compact copies the live ones into fresh chunks (and the old
// chunks go once no reader holds them). The store is its writer's alone.
type holderStore struct {
	chunk []uint64 // the chunk being filled
	live  int      // words of the current holders
	dead  int      // words of replaced holders still in chunks
}

// holderWords is the words holders of n objects take, with untils or not.
func holderWords(n int, until bool) int {
	w := (n*6 + 7) / 8
	if until {
		w += n
	}
	return w
}

// words is the words h takes.
func (h holders) words() int { return holderWords(len(h.objs), h.until != nil) }

// alloc returns words zeroed words that no holders use.
func (st *holderStore) alloc(words int) []uint64 {
	if words > holderChunkWords/8 {
		return make([]uint64, words)
	}
	if cap(st.chunk)-len(st.chunk) < words {
		st.chunk = make([]uint64, 0, holderChunkWords)
	}
	at := len(st.chunk)
	st.chunk = st.chunk[:at+words]
	return st.chunk[at : at+words : at+words]
}

// pack turns entries sorted by object into holders.
func (st *holderStore) pack(es []entry) holders {
	n := len(es)
	if n == 0 {
		return holders{}
	}
	until := false
	for _, e := range es {
		until = until || e.until != Never
	}
	h := st.carve(n, until)
	for i, e := range es {
		h.objs[i], h.levels[i] = e.obj, uint16(min(e.level, maxLevel))
		if until {
			h.until[i] = e.until
		}
	}
	return h
}

// carve returns holders of n objects in fresh words, to be filled in.
func (st *holderStore) carve(n int, until bool) holders {
	buf := st.alloc(holderWords(n, until))
	base := unsafe.Pointer(&buf[0])
	h := holders{
		objs:   unsafe.Slice((*uint32)(base), n),
		levels: unsafe.Slice((*uint16)(unsafe.Add(base, 4*n)), n),
	}
	if until {
		h.until = unsafe.Slice((*int64)(unsafe.Pointer(&buf[(n*6+7)/8])), n)
	}
	return h
}

// copy returns a copy of h in the store.
func (st *holderStore) copy(h holders) holders {
	if h.len() == 0 {
		return holders{}
	}
	c := st.carve(h.len(), h.until != nil)
	copy(c.objs, h.objs)
	copy(c.levels, h.levels)
	copy(c.until, h.until)
	return c
}

// replaced records that h took old's place.
func (st *holderStore) replaced(old, h holders) {
	st.live += h.words() - old.words()
	st.dead += old.words()
}

// compact copies the holders in up into fresh chunks when the store holds
// more dead words than live ones (and at least compactAfterWords), so
// replacing holders again and again keeps at most twice their memory.
func (st *holderStore) compact(up []holders) {
	if st.dead < compactAfterWords || st.dead <= st.live {
		return
	}
	st.chunk = nil
	for i, h := range up {
		up[i] = st.copy(h)
	}
	st.dead = 0
}

// bytes is the memory of the store's words, dead ones included.
func (st *holderStore) bytes() int { return (st.live + st.dead) * 8 }

// len is the number of objects.
func (h holders) len() int { return len(h.objs) }

// bytes is the memory of the arrays.
func (h holders) bytes() int { return h.words() * 8 }

// minUntil is the earliest until (Never for none).
func (h holders) minUntil() int64 {
	m := Never
	for _, u := range h.until {
		m = min(m, u)
	}
	return m
}

// find returns obj's entry, if obj holds the subject.
func (h holders) find(obj uint32) (entry, bool) {
	i, ok := slices.BinarySearch(h.objs, obj)
	if !ok {
		return entry{}, false
	}
	e := entry{obj: obj, level: int32(h.levels[i]), until: Never}
	if h.until != nil {
		e.until = h.until[i]
	}
	return e, true
}
