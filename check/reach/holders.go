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

// pack turns entries sorted by object into holders.
func pack(es []entry) holders {
	if len(es) == 0 {
		return holders{}
	}
	// objs and levels share one allocation: a subject's holders are then
	// one object to the garbage collector, or two with untils.
	n := len(es)
	buf := make([]uint32, n+(n+1)/2)
	h := holders{objs: buf[:n:n], levels: unsafe.Slice((*uint16)(unsafe.Pointer(&buf[n])), n)}
	for i, e := range es {
		h.objs[i], h.levels[i] = e.obj, uint16(min(e.level, maxLevel))
		if e.until != Never && h.until == nil {
			h.until = make([]int64, len(es))
			for j := range i {
				h.until[j] = Never
			}
		}
		if h.until != nil {
			h.until[i] = e.until
		}
	}
	return h
}

// len is the number of objects.
func (h holders) len() int { return len(h.objs) }

// bytes is the memory of the arrays.
func (h holders) bytes() int { return len(h.objs)*6 + len(h.until)*8 }

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
