package reach

import (
	"strings"
	"unsafe"

	"github.com/pembadb/pemba/graph"
)

// names numbers the objects (or subjects) of one indexed relation, so
// edges and flattened memberships hold four-byte numbers instead of
// strings. Numbers are never reused: a name keeps its number for the life
// of the index, also after its last relationship is deleted.
//
// A name's strings are copied into the names' arena of large byte
// chunks: a million subjects are then a few hundred chunks to the
// garbage collector instead of a million strings (each its own object to
// mark on every cycle), and the index keeps no relationship's memory
// alive.
type names[K comparable] struct {
	ids   map[K]uint32
	list  []K
	arena arena
}

// intern returns k's number, assigning the next one to a new name.
func (n *names[K]) intern(k K) uint32 {
	if id, ok := n.ids[k]; ok {
		return id
	}
	if n.ids == nil {
		n.ids = make(map[K]uint32)
	}
	k = n.own(k)
	id := uint32(len(n.list))
	n.ids[k] = id
	n.list = append(n.list, k)
	return id
}

// own returns k with its strings in the arena.
func (n *names[K]) own(k K) K {
	switch x := any(&k).(type) {
	case *string:
		*x = n.arena.copy(*x)
	case *graph.ObjectRef:
		x.Type, x.ID = n.arena.copy(x.Type), n.arena.copy(x.ID)
	}
	return k
}

// lookup returns k's number, if it has one.
func (n *names[K]) lookup(k K) (uint32, bool) {
	id, ok := n.ids[k]
	return id, ok
}

// len is the number of names.
func (n *names[K]) len() int { return len(n.list) }

// arenaChunk is the size of an arena's chunks; a string longer than a
// sixteenth of it gets an allocation of its own.
const arenaChunk = 64 << 10

// arena holds copies of strings in large chunks that are only ever
// appended to: the bytes behind a string it returned never change.
type arena struct {
	chunk []byte
}

// copy returns a copy of s in the arena.
func (a *arena) copy(s string) string {
	switch {
	case s == "":
		return ""
	case len(s) > arenaChunk/16:
		return strings.Clone(s)
	case cap(a.chunk)-len(a.chunk) < len(s):
		a.chunk = make([]byte, 0, arenaChunk)
	}
	at := len(a.chunk)
	a.chunk = append(a.chunk, s...)
	return unsafe.String(&a.chunk[at], len(s))
}
