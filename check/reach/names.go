package reach

import (
	"hash/maphash"
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
type names[K string | graph.ObjectRef] struct {
	t nameTable
}

// parts splits k into the strings the table keeps: a string is itself,
// an object its type and ID.
func parts[K string | graph.ObjectRef](k *K) (a, b string) {
	switch x := any(k).(type) {
	case *string:
		return *x, ""
	case *graph.ObjectRef:
		return x.Type, x.ID
	}
	panic("reach: unnamed kind of name")
}

// intern returns k's number, assigning the next one to a new name.
func (n *names[K]) intern(k K) uint32 {
	a, b := parts(&k)
	return n.t.intern(a, b)
}

// lookup returns k's number, if it has one.
func (n *names[K]) lookup(k K) (uint32, bool) {
	a, b := parts(&k)
	return n.t.lookup(a, b)
}

// name returns the name numbered x; its strings are the arena's.
func (n *names[K]) name(x uint32) K {
	a, b := n.t.name(x)
	var k K
	switch p := any(&k).(type) {
	case *string:
		*p = a
	case *graph.ObjectRef:
		*p = graph.ObjectRef{Type: a, ID: b}
	}
	return k
}

// len is the number of names.
func (n *names[K]) len() int { return len(n.t.refs) }

// nameTable numbers names of one or two strings. Its hash table, the
// names' places and their bytes hold no pointer but the arena's chunks,
// so the garbage collector has nothing in it to scan; probing a slot
// (a tag of the hash and a number) touches one word before the bytes it
// compares.
type nameTable struct {
	seed  maphash.Seed
	slots []uint64  // a name's hash's high half << 32 | its number + 1; 0 is free
	refs  []nameRef // by number: where the name is
	arena nameArena
}

// nameRef is where a name's bytes are: both strings, one after the
// other, split after the first.
type nameRef struct {
	at    uint32 // the place of its bytes in the arena
	n     uint32
	split uint32
}

func (t *nameTable) hash(a, b string) uint64 {
	h := maphash.String(t.seed, a)
	if b != "" {
		h = h*0x9e3779b97f4a7c15 ^ maphash.String(t.seed, b)
	}
	return h
}

// lookup returns the number of the name a, b, if it has one.
func (t *nameTable) lookup(a, b string) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	h := t.hash(a, b)
	tag, mask := h>>32, len(t.slots)-1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if s>>32 == tag {
			if x := uint32(s) - 1; t.is(x, a, b) {
				return x, true
			}
		}
	}
}

// is reports whether name x is a, b.
func (t *nameTable) is(x uint32, a, b string) bool {
	r := t.refs[x]
	if int(r.split) != len(a) || int(r.n) != len(a)+len(b) {
		return false
	}
	s := t.arena.str(r)
	return s[:len(a)] == a && s[len(a):] == b
}

// name returns the strings of name x.
func (t *nameTable) name(x uint32) (a, b string) {
	r := t.refs[x]
	s := t.arena.str(r)
	return s[:r.split], s[r.split:]
}

// intern returns the number of the name a, b, assigning the next one to a
// new name.
func (t *nameTable) intern(a, b string) uint32 {
	if x, ok := t.lookup(a, b); ok {
		return x
	}
	if 4*(len(t.refs)+1) > 3*len(t.slots) {
		t.grow()
	}
	x := uint32(len(t.refs))
	t.refs = append(t.refs, t.arena.put(a, b))
	t.place(t.hash(a, b), x)
	return x
}

// place puts number x, of hash h, in the first free slot from h on.
func (t *nameTable) place(h uint64, x uint32) {
	mask := len(t.slots) - 1
	i := int(h) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = h>>32<<32 | uint64(x+1)
}

// grow doubles the slots (to at least 16) and places every name again.
func (t *nameTable) grow() {
	if len(t.slots) == 0 {
		t.seed = maphash.MakeSeed()
	}
	t.slots = make([]uint64, max(16, 2*len(t.slots)))
	for x := range t.refs {
		a, b := t.name(uint32(x))
		t.place(t.hash(a, b), uint32(x))
	}
}

// nameArena holds names' bytes in chunks (see chunked) that are only
// ever appended to: the bytes behind a string it returned never change.
type nameArena struct {
	bytes chunked[byte]
}

// put copies a and b into the arena, one after the other.
func (ar *nameArena) put(a, b string) nameRef {
	n := len(a) + len(b)
	r := nameRef{n: uint32(n), split: uint32(len(a))}
	if n > 0 {
		r.at = ar.bytes.alloc(n)
		copy(ar.bytes.run(r.at, len(a)), a)
		copy(ar.bytes.run(r.at, n)[len(a):], b)
	}
	return r
}

// str returns the bytes r places, as a string.
func (ar *nameArena) str(r nameRef) string {
	if r.n == 0 {
		return ""
	}
	return unsafe.String(&ar.bytes.run(r.at, int(r.n))[0], r.n)
}
