package dispatch

import "slices"

// Ring assigns each sub-problem key an owner among a cluster's members by
// rendezvous (highest random weight) hashing: every member scores the
// key and the highest score owns it. Every node that lists the same
// members computes the same owners; a member joining takes about 1/n of
// the keys from the others and a member leaving hands only its own keys
// to the others, spread evenly. A Ring is immutable.
type Ring struct {
	members []string // sorted, distinct
	seeds   []uint64 // seeds[i] is the hash of members[i]
}

// NewRing returns the ring of members (duplicates and order ignored).
func NewRing(members []string) *Ring {
	m := slices.Clone(members)
	slices.Sort(m)
	m = slices.Compact(m)
	r := &Ring{members: m, seeds: make([]uint64, len(m))}
	for i, name := range m {
		r.seeds[i] = seedOf(name)
	}
	return r
}

// Members returns the ring's members, sorted.
func (r *Ring) Members() []string { return slices.Clone(r.members) }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Owner returns the member owning a key hash (see KeyHash), or "" for an
// empty ring.
func (r *Ring) Owner(h uint64) string {
	best, bestScore := -1, uint64(0)
	for i, seed := range r.seeds {
		if s := mix(h ^ seed); best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return ""
	}
	return r.members[best]
}

// mix is SplitMix64's finalizer: it spreads the bits of x so scores of
// one key under different seeds are independent.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// KeyHash hashes the part of a Key that decides its owner: revision,
// resource type, resource ID, relation and subject (FNV-1a, each string
// ended by a zero byte, which names never contain). It is the same on
// every node and every build.
func KeyHash(k Key) uint64 {
	h := uint64(fnvOffset)
	for i := range 8 {
		h = (h ^ uint64(k.Revision>>(8*i))&0xff) * fnvPrime
	}
	for _, s := range [...]string{k.ResourceType, k.ResourceID, k.Relation, k.Subject.Object.Type, k.Subject.Object.ID, k.Subject.Relation} {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * fnvPrime
		}
		h *= fnvPrime // the zero byte
	}
	return h
}

// FNV-1a's 64-bit parameters.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// seedOf hashes a member's name.
func seedOf(name string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * fnvPrime
	}
	return mix(h)
}
