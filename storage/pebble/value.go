package pebble

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// A relationship version's value, identical in both indexes:
//
//	flags (1 byte: tombstone, has caveat, has expiration)
//	[expiration: unix seconds int64 BE, nanoseconds uint32 BE]
//	[caveat: uvarint name length, name, context JSON to the end]
const (
	flagTombstone  = 1 << 0
	flagCaveat     = 1 << 1
	flagExpiration = 1 << 2
)

var tombstone = []byte{flagTombstone}

// appendPayload encodes r's caveat and expiration. ctxJSON is the caveat
// context already encoded by storage.EncodeCaveatContext.
func appendPayload(dst []byte, r *graph.Relationship, ctxJSON []byte) []byte {
	var flags byte
	if r.Caveat != nil {
		flags |= flagCaveat
	}
	if r.Expiration != nil {
		flags |= flagExpiration
	}
	dst = append(dst, flags)
	if r.Expiration != nil {
		dst = binary.BigEndian.AppendUint64(dst, uint64(r.Expiration.Unix()))
		dst = binary.BigEndian.AppendUint32(dst, uint32(r.Expiration.Nanosecond()))
	}
	if r.Caveat != nil {
		dst = binary.AppendUvarint(dst, uint64(len(r.Caveat.Name)))
		dst = append(dst, r.Caveat.Name...)
		dst = append(dst, ctxJSON...)
	}
	return dst
}

// payload is a decoded value; caveat fields alias the value.
type payload struct {
	tombstone  bool
	expiration time.Time // zero: none
	hasCaveat  bool
	caveatName []byte
	caveatCtx  []byte
}

func decodePayload(v []byte) (payload, error) {
	var p payload
	if len(v) == 0 {
		return p, errCorrupt
	}
	flags := v[0]
	v = v[1:]
	if flags&flagTombstone != 0 {
		p.tombstone = true
		return p, nil
	}
	if flags&flagExpiration != 0 {
		if len(v) < 12 {
			return p, errCorrupt
		}
		p.expiration = time.Unix(int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint32(v[8:]))).UTC()
		v = v[12:]
	}
	if flags&flagCaveat != 0 {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return p, errCorrupt
		}
		p.hasCaveat = true
		p.caveatName = v[k : k+int(n)]
		p.caveatCtx = v[k+int(n):]
	}
	return p, nil
}

// expiredAt reports whether the version is invisible at now.
func (p *payload) expiredAt(now time.Time) bool {
	return !p.expiration.IsZero() && !p.expiration.After(now)
}

// apply sets r's caveat and expiration from the payload.
func (p *payload) apply(r *graph.Relationship) error {
	if !p.expiration.IsZero() {
		exp := p.expiration
		r.Expiration = &exp
	}
	if p.hasCaveat {
		c := &graph.Caveat{Name: string(p.caveatName)}
		if len(p.caveatCtx) > 0 {
			if err := json.Unmarshal(p.caveatCtx, &c.Context); err != nil {
				return fmt.Errorf("caveat context: %w", err)
			}
		}
		r.Caveat = c
	}
	return nil
}

// revisionRecord is the value under v<rev>: when and by whom a revision
// was committed.
//
//	commit time (8 bytes, Unix ns BE) flags (1 byte)
//	uvarint actor length, actor
//	without recordLabels: reason to the end
//	with recordLabels: uvarint reason length, reason, uvarint label
//	  count, each label as uvarint key length, key, uvarint value
//	  length, value
//
// Records without labels keep the first, older form, which every earlier
// version of the store wrote.
type revisionRecord struct {
	committedAt   time.Time
	meta          storage.WriteMetadata
	schemaChanged bool
}

// Revision record flags.
const (
	recordSchemaChanged = 1 << 0
	recordLabels        = 1 << 1
)

func (rr *revisionRecord) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(rr.committedAt.UnixNano()))
	var flags byte
	if rr.schemaChanged {
		flags |= recordSchemaChanged
	}
	if len(rr.meta.Labels) > 0 {
		flags |= recordLabels
	}
	b = append(b, flags)
	b = appendString(b, rr.meta.Actor)
	if flags&recordLabels == 0 {
		return append(b, rr.meta.Reason...)
	}
	b = appendString(b, rr.meta.Reason)
	b = binary.AppendUvarint(b, uint64(len(rr.meta.Labels)))
	for _, l := range rr.meta.Labels {
		b = appendString(appendString(b, l.Key), l.Value)
	}
	return b
}

func decodeRevisionRecord(v []byte) (revisionRecord, error) {
	var rr revisionRecord
	if len(v) < 9 {
		return rr, errCorrupt
	}
	rr.committedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
	flags := v[8]
	rr.schemaChanged = flags&recordSchemaChanged != 0
	v = v[9:]
	var ok bool
	if rr.meta.Actor, v, ok = cutString(v); !ok {
		return rr, errCorrupt
	}
	if flags&recordLabels == 0 {
		rr.meta.Reason = string(v)
		return rr, nil
	}
	if rr.meta.Reason, v, ok = cutString(v); !ok {
		return rr, errCorrupt
	}
	n, k := binary.Uvarint(v)
	// Each label takes at least two bytes: refuse counts the value cannot hold.
	if k <= 0 || n > uint64(len(v)-k)/2 {
		return rr, errCorrupt
	}
	v = v[k:]
	rr.meta.Labels = make([]storage.Label, n)
	for i := range rr.meta.Labels {
		l := &rr.meta.Labels[i]
		if l.Key, v, ok = cutString(v); !ok {
			return rr, errCorrupt
		}
		if l.Value, v, ok = cutString(v); !ok {
			return rr, errCorrupt
		}
	}
	if len(v) != 0 {
		return rr, errCorrupt
	}
	return rr, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// cutString splits a length-prefixed string off the front of v.
func cutString(v []byte) (s string, rest []byte, ok bool) {
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return "", nil, false
	}
	return string(v[k : k+int(n)]), v[k+int(n):], true
}

// sortedLabels returns labels sorted by key, then value, the order the
// store keeps them in; it copies only when they are not sorted already.
func sortedLabels(labels []storage.Label) []storage.Label {
	if len(labels) == 0 {
		return nil
	}
	if slices.IsSortedFunc(labels, compareLabels) {
		return labels
	}
	return slices.SortedFunc(slices.Values(labels), compareLabels)
}

func compareLabels(a, b storage.Label) int {
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
}

// changeLog accumulates the value under w<rev>: the relationship changes
// of one revision, each as op, forward key body and payload.
type changeLog struct {
	buf []byte
	n   int
}

func (c *changeLog) add(op storage.Op, body, payload []byte) {
	c.buf = append(c.buf, byte(op))
	c.buf = binary.AppendUvarint(c.buf, uint64(len(body)))
	c.buf = append(c.buf, body...)
	c.buf = binary.AppendUvarint(c.buf, uint64(len(payload)))
	c.buf = append(c.buf, payload...)
	c.n++
}

func (c *changeLog) encode() []byte {
	out := binary.AppendUvarint(make([]byte, 0, len(c.buf)+binary.MaxVarintLen64), uint64(c.n))
	return append(out, c.buf...)
}

// decodeChanges calls fn for each change in an encoded change log.
func decodeChanges(v []byte, fn func(op storage.Op, body, payload []byte) error) error {
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return errCorrupt
	}
	v = v[k:]
	for range n {
		if len(v) < 1 {
			return errCorrupt
		}
		op := storage.Op(v[0])
		v = v[1:]
		var parts [2][]byte
		for i := range parts {
			l, k := binary.Uvarint(v)
			if k <= 0 || uint64(len(v)-k) < l {
				return errCorrupt
			}
			parts[i] = v[k : k+int(l)]
			v = v[k+int(l):]
		}
		if err := fn(op, parts[0], parts[1]); err != nil {
			return err
		}
	}
	return nil
}

// schemaValue encodes a stored schema version.
func encodeSchema(s storage.StoredSchema) []byte {
	b := binary.AppendUvarint(nil, uint64(len(s.Text)))
	b = append(b, s.Text...)
	return append(b, s.Compiled...)
}

func decodeSchema(v []byte, rev storage.Revision) (storage.StoredSchema, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) < n {
		return storage.StoredSchema{}, errCorrupt
	}
	s := storage.StoredSchema{Text: string(v[k : k+int(n)]), Revision: rev}
	if rest := v[k+int(n):]; len(rest) > 0 {
		s.Compiled = append([]byte(nil), rest...)
	}
	return s, nil
}
