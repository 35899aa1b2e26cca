package auditlog

import (
	"encoding/binary"
	"strings"
)

// An import batch can hold many thousands of relationships, mostly with
// distinct objects. Indexing each object under its own term would cost a
// key per relationship; instead an import entry is indexed by its types
// (ImportResourceTypeTerm, ImportSubjectTypeTerm) and carries a Bloom
// filter of its object terms (ResourceTerm, SubjectTerm), which the engine
// stores beside the entry (storage.AuditLog.AuditFilter). A query for one
// object reads the filters of the import entries of its type and decodes
// only the entries whose filter may contain it.
//
// The filter is 10 bits per object term with 7 probes (about 1% false
// positives): a byte holding the probe count, then the bit array.
const (
	filterBitsPerKey = 10
	filterProbes     = 7
)

// ImportResourceTypeTerm indexes the import entries with a resource of type typ.
func ImportResourceTypeTerm(typ string) string { return "i" + sep + typ }

// ImportSubjectTypeTerm indexes the import entries with a subject of type typ.
func ImportSubjectTypeTerm(typ string) string { return "j" + sep + typ }

// ImportTermFor returns the term under which the import entries that may
// hold object term objectTerm (a ResourceTerm or SubjectTerm) are indexed;
// ok is false for any other term.
func ImportTermFor(objectTerm string) (string, bool) {
	if len(objectTerm) < 2 || objectTerm[1] != sep[0] {
		return "", false
	}
	typ, _, found := strings.Cut(objectTerm[2:], sep)
	if !found {
		return "", false
	}
	switch objectTerm[0] {
	case 'r':
		return ImportResourceTypeTerm(typ), true
	case 's':
		return ImportSubjectTypeTerm(typ), true
	}
	return "", false
}

// buildFilter returns the Bloom filter of the keys whose first hashes
// (keyHash) are given. A key added twice is set twice: repeats cost
// nothing but a slightly larger filter.
func buildFilter(hashes []uint64) []byte {
	if len(hashes) == 0 {
		return nil
	}
	bits := max(64, len(hashes)*filterBitsPerKey)
	f := make([]byte, 1+(bits+7)/8)
	f[0] = filterProbes
	n := uint64(len(f)-1) * 8
	for _, h1 := range hashes {
		h2 := secondHash(h1)
		for i := range uint64(filterProbes) {
			bit := (h1 + i*h2) % n
			f[1+bit/8] |= 1 << (bit % 8)
		}
	}
	return f
}

// FilterMayContain reports whether key may have been added to filter; a
// filter it cannot read answers true (the entry is then decoded and
// checked, never missed).
func FilterMayContain(filter []byte, key string) bool {
	if len(filter) < 2 || filter[0] == 0 || filter[0] > 32 {
		return true
	}
	n := uint64(len(filter)-1) * 8
	h1 := keyHash(key)
	h2 := secondHash(h1)
	for i := range uint64(filter[0]) {
		bit := (h1 + i*h2) % n
		if filter[1+bit/8]&(1<<(bit%8)) == 0 {
			return false
		}
	}
	return true
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// keyHash is the 64-bit FNV-1a hash of the concatenation of parts,
// computed without building it.
func keyHash(parts ...string) uint64 {
	h := uint64(fnvOffset)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= fnvPrime
		}
	}
	return h
}

// secondHash derives double hashing's second hash from the first: FNV-1a
// over its bytes, made odd.
func secondHash(h1 uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], h1)
	h2 := uint64(fnvOffset)
	for _, c := range b {
		h2 ^= uint64(c)
		h2 *= fnvPrime
	}
	return h2 | 1
}
