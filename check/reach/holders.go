package reach

import (
	"slices"
	"sync/atomic"
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
// get a chunk of their own.
const holderChunkWords = 32 << 10

// compactAfterWords is the least dead space, in words, that makes a
// holderStore compact.
const compactAfterWords = 1 << 19

// span is where a subject's holders are in its relation's holderStore:
// the chunk and word they start at, and how many objects they hold (the
// top bit of n says whether an until follows each). It holds no pointer,
// so a million subjects' spans are nothing for the garbage collector to
// scan.
type span struct {
	at uint32 // chunk << 15 | word
	n  uint32
}

const spanUntil = 1 << 31

// len is the number of objects.
func (sp span) len() int { return int(sp.n &^ spanUntil) }

// words is the words the holders take.
func (sp span) words() int { return holderWords(sp.len(), sp.n&spanUntil != 0) }

// holderStore carves the holders of one relation's subjects out of large
// chunks: a million subjects' holders are then a few hundred objects to
// the garbage collector instead of a million, each its own object to mark
// on every cycle. Holders are never written once packed, since readers
// keep them after the index's lock is released; replaced ones stay in
// their chunk as dead space until the store holds more dead than live
// words, when compact copies the live ones into fresh chunks (and the old
// chunks go once no reader holds them).
//
// The store is its writer's alone, except for the chunk directory, which
// readers load (under the index's read lock) to find a published span's
// chunk: the writer replaces the directory instead of appending to it,
// so one it packs into while readers read needs no lock.
type holderStore struct {
	dir  atomic.Pointer[[][]uint64] // the chunks, by number
	fill uint32                     // the number of the chunk being filled, plus one (0: none)
	used int                        // words handed out of it
	live int                        // words of the current holders
	dead int                        // words of replaced holders still in chunks
}

// holderWords is the words holders of n objects take, with untils or not.
func holderWords(n int, until bool) int {
	w := (n*6 + 7) / 8
	if until {
		w += n
	}
	return w
}

// chunks returns the chunk directory.
func (st *holderStore) chunks() [][]uint64 {
	if d := st.dir.Load(); d != nil {
		return *d
	}
	return nil
}

// addChunk publishes a new directory with c at its end and returns c's
// number.
func (st *holderStore) addChunk(c []uint64) uint32 {
	old := st.chunks()
	d := make([][]uint64, len(old)+1, len(old)+1)
	copy(d, old)
	d[len(old)] = c
	st.dir.Store(&d)
	return uint32(len(old))
}

// alloc returns the place of words zeroed words that no holders use.
func (st *holderStore) alloc(words int) uint32 {
	if words > holderChunkWords/8 {
		return st.addChunk(make([]uint64, words)) << 15
	}
	if st.fill == 0 || st.used+words > holderChunkWords {
		st.fill = st.addChunk(make([]uint64, holderChunkWords)) + 1
		st.used = 0
	}
	at := (st.fill-1)<<15 | uint32(st.used)
	st.used += words
	return at
}

// pack stores entries sorted by object as a subject's holders.
func (st *holderStore) pack(es []entry) span {
	n := len(es)
	if n == 0 {
		return span{}
	}
	until := false
	for _, e := range es {
		until = until || e.until != Never
	}
	sp := span{at: st.alloc(holderWords(n, until)), n: uint32(n)}
	if until {
		sp.n |= spanUntil
	}
	h := st.view(sp)
	for i, e := range es {
		h.objs[i], h.levels[i] = e.obj, uint16(min(e.level, maxLevel))
		if until {
			h.until[i] = e.until
		}
	}
	return sp
}

// view returns the holders at sp, which alias the store's chunk.
func (st *holderStore) view(sp span) holders {
	n := sp.len()
	if n == 0 {
		return holders{}
	}
	c, w := sp.at>>15, sp.at&(1<<15-1)
	buf := st.chunks()[c][w:]
	base := unsafe.Pointer(&buf[0])
	h := holders{
		objs:   unsafe.Slice((*uint32)(base), n),
		levels: unsafe.Slice((*uint16)(unsafe.Add(base, 4*n)), n),
	}
	if sp.n&spanUntil != 0 {
		h.until = unsafe.Slice((*int64)(unsafe.Pointer(&buf[(n*6+7)/8])), n)
	}
	return h
}

// copy returns a copy of the holders at sp, from a store, in this one.
func (st *holderStore) copy(from *holderStore, sp span) span {
	if sp.len() == 0 {
		return span{}
	}
	words := sp.words()
	at := st.alloc(words)
	src, dst := from.chunks()[sp.at>>15], st.chunks()[at>>15]
	copy(dst[at&(1<<15-1):][:words], src[sp.at&(1<<15-1):][:words])
	return span{at: at, n: sp.n}
}

// replaced records that h took old's place.
func (st *holderStore) replaced(old, h span) {
	st.live += h.words() - old.words()
	st.dead += old.words()
}

// compact copies the holders in up into fresh chunks when the store holds
// more dead words than live ones (and at least compactAfterWords), so
// replacing holders again and again keeps at most twice their memory. It
// runs under the index's write lock: it moves published spans.
func (st *holderStore) compact(up []span) {
	if st.dead < compactAfterWords || st.dead <= st.live {
		return
	}
	var fresh holderStore
	for i, sp := range up {
		up[i] = fresh.copy(st, sp)
	}
	st.dir.Store(fresh.dir.Load())
	st.fill, st.used, st.dead = fresh.fill, fresh.used, 0
}

// bytes is the memory of the store's words, dead ones included.
func (st *holderStore) bytes() int { return (st.live + st.dead) * 8 }

// len is the number of objects.
func (h holders) len() int { return len(h.objs) }

// bytes is the memory of the arrays.

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
