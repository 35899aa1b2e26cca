package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Key spaces. Every key starts with one of these bytes.
//
//	f <resType> <resID> <relation> <subjType> <subjID> <subjRel> ^rev  forward index
//	r <subjType> <subjID> <subjRel> <resType> <resID> <relation> ^rev  reverse index
//	s ^rev                                                             schema version
//	v rev                                                              revision record
//	w rev                                                              change log
//	x <expiration> f<...>^rev                                          expiration index
//	m gc                                                               GC floor
//	m at                                                               newest trimmed audit entry
//	m ai                                                               audit log indexed through
//	a e rev                                                            audit entry
//	a t <term> rev                                                     audit index term
//	a f rev                                                            audit object filter (import entries)
//
// <x> is a string component in an order-preserving encoding (escape
// 0x00 as 0x00 0xff, terminate with 0x00 0x01), so tuples of components
// sort exactly like the tuples of strings, bytewise, and a prefix of
// components selects a contiguous key range. ^rev is the bitwise
// complement of the revision, big-endian, so that the versions of one
// relationship sort newest first and a seek to body+^R lands on the newest
// version at or before R. rev (uncomplemented) orders the revision log
// and the audit log.
//
// The audit log (a) is kept apart from history: garbage collection never
// touches it, only TrimAudit does. An entry's value is its auditlog
// encoding; each of its index terms is an empty-valued key, so the
// revisions indexed under one term are one contiguous, revision-ordered
// range, written behind the log by a background indexer (auditindex.go);
// "m ai" is the revision through which it has indexed. "m at" holds the revision and hash of the newest entry TrimAudit
// removed, so the chain continues from it when the whole log is trimmed.
const (
	spaceForward  byte = 'f'
	spaceReverse  byte = 'r'
	spaceSchema   byte = 's'
	spaceRevision byte = 'v'
	spaceChanges  byte = 'w'
	spaceMeta     byte = 'm'
	spaceExpiry   byte = 'x'
	spaceAudit    byte = 'a'
)

// Audit key spaces, the byte after spaceAudit.
const (
	auditEntry  byte = 'e'
	auditTerm   byte = 't'
	auditFilter byte = 'f'
)

const (
	suffixLen = 8
	escByte   = 0x00
	escZero   = 0xff // 0x00 0xff encodes a literal 0x00
	escEnd    = 0x01 // 0x00 0x01 ends a component
)

var (
	keyGCFloor      = []byte{spaceMeta, 'g', 'c'}
	keyAuditTrimmed = []byte{spaceMeta, 'a', 't'}
	keyAuditIndexed = []byte{spaceMeta, 'a', 'i'}
)

var errCorrupt = errors.New("corrupt key or value")

// appendComponent appends s in the order-preserving encoding.
func appendComponent(dst []byte, s string) []byte {
	return append(appendEscaped(dst, s), escByte, escEnd)
}

// appendEscaped appends s with its zero bytes escaped and no terminator:
// the key prefix shared by every component that starts with s.
func appendEscaped(dst []byte, s string) []byte {
	for {
		i := indexZero(s)
		if i < 0 {
			break
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, escByte, escZero)
		s = s[i+1:]
	}
	return append(dst, s...)
}

func indexZero(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return i
		}
	}
	return -1
}

// nextComponent splits the first encoded component off b. The returned
// component aliases b unless it contained an escaped zero.
func nextComponent(b []byte) (comp, rest []byte, err error) {
	i := bytes.IndexByte(b, escByte)
	if i < 0 || i+1 >= len(b) {
		return nil, nil, errCorrupt
	}
	if b[i+1] == escEnd {
		return b[:i], b[i+2:], nil
	}
	// Rare: an escaped zero. Unescape into a fresh slice.
	var out []byte
	for {
		if i < 0 || i+1 >= len(b) {
			return nil, nil, errCorrupt
		}
		out = append(out, b[:i]...)
		switch b[i+1] {
		case escEnd:
			return out, b[i+2:], nil
		case escZero:
			out = append(out, 0)
			b = b[i+2:]
			i = bytes.IndexByte(b, escByte)
		default:
			return nil, nil, errCorrupt
		}
	}
}

// index is one of the two relationship indexes.
type index byte

const (
	forward = index(spaceForward)
	reverse = index(spaceReverse)
)

// components returns r's six key components in the index's order.
func (x index) components(r *graph.Relationship) [6]string {
	if x == forward {
		return [6]string{r.Resource.Type, r.Resource.ID, r.Relation,
			r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation}
	}
	return [6]string{r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation,
		r.Resource.Type, r.Resource.ID, r.Relation}
}

// appendBody appends the index key of r without its revision suffix.
func (x index) appendBody(dst []byte, r *graph.Relationship) []byte {
	dst = append(dst, byte(x))
	for _, c := range x.components(r) {
		dst = appendComponent(dst, c)
	}
	return dst
}

// splitBody decodes the six components of a key body (index byte included).
func splitBody(body []byte, comps *[6][]byte) error {
	if len(body) == 0 {
		return errCorrupt
	}
	b := body[1:]
	var err error
	for i := range comps {
		if comps[i], b, err = nextComponent(b); err != nil {
			return err
		}
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

func appendDescRevision(dst []byte, rev storage.Revision) []byte {
	return binary.BigEndian.AppendUint64(dst, ^uint64(rev))
}

func descRevision(b []byte) storage.Revision {
	return storage.Revision(^binary.BigEndian.Uint64(b))
}

// expirationKey is x, the expiration (12 bytes: unix seconds with the
// sign bit flipped so earlier instants sort first, then nanoseconds; exp
// is the payload's encoding, converted here), the forward body and ^rev.
func expirationKey(dst, exp, fwd []byte, rev storage.Revision) []byte {
	dst = append(dst, spaceExpiry)
	dst = binary.BigEndian.AppendUint64(dst, binary.BigEndian.Uint64(exp)^(1<<63))
	dst = append(dst, exp[8:12]...)
	dst = append(dst, fwd...)
	return appendDescRevision(dst, rev)
}

// expirationPrefix is the smallest expiration-index key at or after t.
func expirationPrefix(t time.Time) []byte {
	dst := []byte{spaceExpiry}
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

// versionKey is a key body followed by its revision suffix.
func splitVersion(key []byte) (body []byte, rev storage.Revision, ok bool) {
	if len(key) < 1+suffixLen {
		return nil, 0, false
	}
	n := len(key) - suffixLen
	return key[:n], descRevision(key[n:]), true
}

// prefixEnd returns the smallest key greater than every key that starts
// with prefix, where prefix is an index byte followed by whole components
// (so its last byte is escEnd, or it is the bare index byte).
func prefixEnd(dst, prefix []byte) []byte {
	dst = append(dst, prefix...)
	dst[len(dst)-1]++
	return dst
}

// afterVersions returns a key above every version of body: suffixes are
// complemented revisions of revisions >= 1, so never all 0xff.
func afterVersions(dst, body []byte) []byte {
	dst = append(dst, body...)
	return append(dst, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
}

func revisionKey(space byte, rev storage.Revision) []byte {
	return binary.BigEndian.AppendUint64([]byte{space}, uint64(rev))
}

// auditEntryKey is the key of the audit entry of rev.
func auditEntryKey(rev storage.Revision) []byte {
	return appendAuditEntryKey(make([]byte, 0, 10), rev)
}

// appendAuditEntryKey appends the key of the audit entry of rev to dst.
func appendAuditEntryKey(dst []byte, rev storage.Revision) []byte {
	return binary.BigEndian.AppendUint64(append(dst, spaceAudit, auditEntry), uint64(rev))
}

// auditFilterKey is the key of the object filter of the entry of rev.
func auditFilterKey(rev storage.Revision) []byte {
	return binary.BigEndian.AppendUint64([]byte{spaceAudit, auditFilter}, uint64(rev))
}

// auditTermPrefix appends the key prefix of every revision indexed under term.
func auditTermPrefix(dst []byte, term string) []byte {
	return appendComponent(append(dst, spaceAudit, auditTerm), term)
}

// auditTermKey appends the key that indexes rev under term.
func auditTermKey(dst []byte, term string, rev storage.Revision) []byte {
	return binary.BigEndian.AppendUint64(auditTermPrefix(dst, term), uint64(rev))
}

func schemaKey(rev storage.Revision) []byte {
	return appendDescRevision([]byte{spaceSchema}, rev)
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
