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

// span is where a subject's holders are in its relation's holderStore:
// their place (see chunked) and how many objects they hold (the top bit
// of n says whether an until follows each). It holds no pointer, so a
// million subjects' spans are nothing for the garbage collector to scan.
type span struct {
	at uint32
	n  uint32
}

const spanUntil = 1 << 31

// len is the number of objects.
func (sp span) len() int { return int(sp.n &^ spanUntil) }

// words is the words the holders take.
func (sp span) words() int { return holderWords(sp.len(), sp.n&spanUntil != 0) }

// holderStore keeps the holders of one relation's subjects in chunks of
// eight-byte words. Readers find published spans' chunks under the
// index's read lock and keep the holders they view after it; the writer
// packs new ones without the lock (see chunked).
type holderStore struct {
	words chunked[uint64]
}

// holderWords is the words holders of n objects take, with untils or not.
func holderWords(n int, until bool) int {
	w := (n*6 + 7) / 8
	if until {
		w += n
	}
	return w
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
	sp := span{at: st.words.alloc(holderWords(n, until)), n: uint32(n)}
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
	buf := st.words.run(sp.at, sp.words())
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

// replaced records that h took old's place.
func (st *holderStore) replaced(old, h span) { st.words.replaced(old.words(), h.words()) }

// compact copies the holders in up into fresh chunks when the store wants
// it (see chunked.wantsCompaction). It runs under the index's write lock:
// it moves published spans.
func (st *holderStore) compact(up []span) {
	if !st.words.wantsCompaction() {
		return
	}
	var fresh chunked[uint64]
	for i, sp := range up {
		if sp.len() > 0 {
			up[i].at = fresh.copyFrom(&st.words, sp.at, sp.words())
		}
	}
	st.words.adopt(&fresh)
}

// bytes is the memory of the store's words, dead ones included.
func (st *holderStore) bytes() int { return st.words.elements() * 8 }

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
