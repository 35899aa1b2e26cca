package check

import (
	"strings"
	"sync"
	"sync/atomic"
)

// subjectID is a subject's ID interned by a subjectIDs table: set
// evaluation keys its sets by these, so combining, restricting and timing
// sets of thousands of subjects works on small integers (maps without
// pointers, which the garbage collector does not scan) instead of
// hashing and comparing strings.
type subjectID uint32

// subjectIDs interns subject IDs (of any type: a set holds subjects of
// one type, and the same ID of two types may share a number). It is
// shared by every set evaluation of an engine, and by the sets its
// setCache keeps, which are only valid with the table that numbered them
// (setEntry.ids). The table is bounded (maxSubjectIDs): an engine
// replaces a table three quarters full (Engine.subjectIDTable), and an
// evaluation that would outgrow one falls back to checks.
//
// Numbers are read far more often than added: lookups take a read lock,
// and names are read without one, from chunks that never move.
type subjectIDs struct {
	mu     sync.RWMutex
	byName map[string]subjectID // guarded by mu
	n      int                  // numbers handed out; guarded by mu
	limit  int                  // the most numbers t hands out, at most maxSubjectIDs
	// chunks hold the names by number, subjectIDChunk to a chunk; a
	// chunk is published before any of its numbers is handed out.
	chunks [maxSubjectIDs / subjectIDChunk]atomic.Pointer[[subjectIDChunk]string]
}

const (
	// maxSubjectIDs bounds the subject IDs one table numbers.
	maxSubjectIDs = 1 << 21
	// subjectIDChunk is how many names one chunk of a table holds.
	subjectIDChunk = 1 << 12
)

// newSubjectIDs returns an empty table that numbers up to limit IDs.
func newSubjectIDs(limit int) *subjectIDs {
	return &subjectIDs{byName: make(map[string]subjectID), limit: min(limit, maxSubjectIDs)}
}

// size returns how many IDs t has numbered.
func (t *subjectIDs) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.n
}

// unnumbered stands for an ID a table has not numbered: no set lists
// it, so each gives it its default membership.
const unnumbered = ^subjectID(0)

// numberOf returns the number of name, or unnumbered.
func (t *subjectIDs) numberOf(name string) subjectID {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.numberLocked(name)
}

// numberLocked is numberOf with t.mu held.
func (t *subjectIDs) numberLocked(name string) subjectID {
	if id, ok := t.byName[name]; ok {
		return id
	}
	return unnumbered
}

// numbersOf sets out[i] to the number of names[i], or unnumbered, under
// one lock.
func (t *subjectIDs) numbersOf(names []string, out []subjectID) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, name := range names {
		out[i] = t.numberLocked(name)
	}
}

// internAll sets out[i] to the number of names[i], numbering the names
// t has not met; ok is false, with out incomplete, when t is full.
func (t *subjectIDs) internAll(names []string, out []subjectID) (ok bool) {
	missing := false
	t.mu.RLock()
	for i, name := range names {
		id, known := t.byName[name]
		out[i] = id
		missing = missing || !known
	}
	t.mu.RUnlock()
	if !missing {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, name := range names {
		id, known := t.byName[name]
		if !known {
			if t.n >= t.limit {
				return false
			}
			id = subjectID(t.n)
			c := t.chunks[t.n/subjectIDChunk].Load()
			if c == nil {
				c = new([subjectIDChunk]string)
				t.chunks[t.n/subjectIDChunk].Store(c)
			}
			// A copy: the name may share memory with a whole row read
			// from storage, which the table would keep alive.
			name := strings.Clone(name)
			c[t.n%subjectIDChunk] = name
			t.byName[name] = id
			t.n++
		}
		out[i] = id
	}
	return true
}

// name returns the ID numbered id, which t handed out.
func (t *subjectIDs) name(id subjectID) string {
	return t.chunks[id/subjectIDChunk].Load()[id%subjectIDChunk]
}

// subjectIDTable returns the engine's table of subject IDs for a new set
// evaluation: a fresh one once the current is three quarters full, so an
// evaluation has room to number what it meets. The sets cached with the
// old table are no longer served (setEntry.ids) and age out of the cache.
func (e *Engine) subjectIDTable() *subjectIDs {
	for {
		t := e.subjectIDs.Load()
		if t != nil && t.size() < t.limit/4*3 {
			return t
		}
		e.subjectIDs.CompareAndSwap(t, newSubjectIDs(maxSubjectIDs))
	}
}
