package reach

// names numbers the objects (or subjects) of one indexed relation, so
// edges and flattened memberships hold four-byte numbers instead of
// strings. Numbers are never reused: a name keeps its number for the life
// of the index, also after its last relationship is deleted.
type names[K comparable] struct {
	ids  map[K]uint32
	list []K
}

// intern returns k's number, assigning the next one to a new name.
func (n *names[K]) intern(k K) uint32 {
	if id, ok := n.ids[k]; ok {
		return id
	}
	if n.ids == nil {
		n.ids = make(map[K]uint32)
	}
	id := uint32(len(n.list))
	n.ids[k] = id
	n.list = append(n.list, k)
	return id
}

// lookup returns k's number, if it has one.
func (n *names[K]) lookup(k K) (uint32, bool) {
	id, ok := n.ids[k]
	return id, ok
}

// len is the number of names.
func (n *names[K]) len() int { return len(n.list) }
