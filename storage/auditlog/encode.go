package auditlog

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

const version = 2

// Fixed-size parts of the encoding: the head (version, kind), the
// trailer (revision, commit time, the previous entry's hash) and the hash.
const (
	headLen    = 1 + 1
	trailerLen = 8 + 8 + 32
	hashLen    = 32
	minLen     = headLen + trailerLen + hashLen
)

// Change flags: bits 0-5 say the identity string of that index (resource
// type, resource id, relation, subject type, subject id, subject relation)
// equals the previous change's and is not repeated.
const (
	flagCaveat     = 1 << 6
	flagExpiration = 1 << 7
)

// hashChunk is how much encoding a Builder lets accumulate before hashing
// it: large entries are hashed as they are built.
const hashChunk = 64 << 10

// ErrCorrupt: a stored entry cannot be decoded.
var ErrCorrupt = errors.New("corrupt audit entry")

// Seal encodes e for storage, after setting e.Hash from every other field
// (e.PrevHash included). Labels are stored sorted: e.Metadata.Labels is
// replaced by a sorted copy. The engine stores the returned value under e.Revision
// and makes e.Hash the PrevHash of the next entry it writes.
func Seal(e *storage.AuditEntry) ([]byte, error) {
	var b Builder
	if err := b.build(e); err != nil {
		return nil, err
	}
	value, h := b.Seal(e.Revision, e.CommittedAt, e.PrevHash)
	e.Hash = h
	return value, nil
}

// SealIndexed is Seal that also returns the entry's index terms and
// object filter (Terms, Filter), computed in the same pass.
func SealIndexed(e *storage.AuditEntry) (value []byte, terms []string, filter []byte, err error) {
	var b Builder
	if err := b.build(e); err != nil {
		return nil, nil, nil, err
	}
	terms, filter = b.Terms(), b.Filter()
	value, e.Hash = b.Seal(e.Revision, e.CommittedAt, e.PrevHash)
	return value, terms, filter, nil
}

// build resets b to e's kind, metadata and schema diff and adds its
// changes; e.Metadata.Labels becomes the sorted copy b stores.
func (b *Builder) build(e *storage.AuditEntry) error {
	b.Reset(e.Kind, e.Metadata, e.Schema)
	e.Metadata.Labels = b.labels
	for i := range e.Changes {
		if err := b.Add(e.Changes[i].Op, &e.Changes[i].Relationship, nil); err != nil {
			return fmt.Errorf("audit entry of revision %d: change %d: %w", e.Revision, i, err)
		}
	}
	return nil
}

// Builder encodes an entry in two steps, so an engine can do most of the
// work before its write critical section: Reset and Add encode (and hash,
// as they go) the parts a write knows up front — kind, metadata, schema
// diff, changes — and collect its index terms; Seal then adds what only
// the critical section knows — revision, commit time, the previous
// entry's hash. What Seal returns is what the package function Seal
// returns for the same entry. A Builder can be reused after Seal.
type Builder struct {
	buf    []byte
	h      hash.Hash
	hashed int // buf[:hashed] has been written to h
	labels []storage.Label
	prev   [6]string // the previous change's identity strings
	terms  termSet
	n      int // changes added since Reset
}

// Reset starts a new entry. meta.Labels are taken sorted, copied if they
// are not sorted already.
func (b *Builder) Reset(kind storage.AuditKind, meta storage.WriteMetadata, schema []storage.SchemaChange) {
	if b.h == nil {
		b.h = sha256.New()
	}
	b.h.Reset()
	b.buf, b.hashed, b.prev, b.n = b.buf[:0], 0, [6]string{}, 0
	b.labels = meta.Labels
	if !slices.IsSortedFunc(b.labels, compareLabels) {
		b.labels = slices.SortedFunc(slices.Values(b.labels), compareLabels)
	}
	b.buf = append(b.buf, version, byte(kind))
	b.buf = appendString(b.buf, meta.Actor)
	b.buf = appendString(b.buf, meta.Reason)
	b.buf = binary.AppendUvarint(b.buf, uint64(len(b.labels)))
	for _, l := range b.labels {
		b.buf = appendString(appendString(b.buf, l.Key), l.Value)
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(len(schema)))
	for _, s := range schema {
		added := byte(0)
		if s.Added {
			added = 1
		}
		b.buf = append(b.buf, added)
		b.buf = appendString(appendString(appendString(b.buf, s.Kind), s.Name), s.Detail)
	}
	b.terms.reset()
	b.terms.meta(kind, meta.Actor, b.labels)
	b.terms.schema(schema)
}

// Add appends one change. caveatContext, when not nil, is r's caveat
// context already encoded by storage.EncodeCaveatContext (engines have
// it at hand); when nil, Add encodes r.Caveat.Context.
func (b *Builder) Add(op storage.Op, r *graph.Relationship, caveatContext []byte) error {
	var name string
	if r.Caveat != nil {
		if name = r.Caveat.Name; name == "" {
			return fmt.Errorf("%w: caveat without a name", storage.ErrInvalidArgument)
		}
		if caveatContext == nil {
			var err error
			if caveatContext, err = storage.EncodeCaveatContext(r.Caveat.Context); err != nil {
				return err
			}
		}
	}
	ids := [6]string{r.Resource.Type, r.Resource.ID, r.Relation,
		r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation}
	var flags byte
	for i, s := range ids {
		if s == b.prev[i] {
			flags |= 1 << i
		}
	}
	if r.Caveat != nil {
		flags |= flagCaveat
	}
	if r.Expiration != nil {
		flags |= flagExpiration
	}
	b.buf = append(b.buf, byte(op), flags)
	for i, s := range ids {
		if flags&(1<<i) == 0 {
			b.buf = appendString(b.buf, s)
		}
	}
	if r.Caveat != nil {
		b.buf = appendString(b.buf, name)
		b.buf = binary.AppendUvarint(b.buf, uint64(len(caveatContext)))
		b.buf = append(b.buf, caveatContext...)
	}
	if r.Expiration != nil {
		b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(r.Expiration.Unix()))
		b.buf = binary.BigEndian.AppendUint32(b.buf, uint32(r.Expiration.Nanosecond()))
	}
	b.prev = ids
	b.n++
	b.terms.change(op, r)
	if len(b.buf)-b.hashed >= hashChunk {
		b.h.Write(b.buf[b.hashed:])
		b.hashed = len(b.buf)
	}
	return nil
}

// Len returns the length of the encoding so far; Seal adds trailerLen
// and hashLen bytes to it.
func (b *Builder) Len() int { return len(b.buf) }

// Changes returns how many changes were added since Reset.
func (b *Builder) Changes() int { return b.n }

// Terms returns the index terms of the entry built so far, each once,
// sorted: what the package function Terms returns for it.
func (b *Builder) Terms() []string { return b.terms.sorted() }

// Filter returns the entry's Bloom filter of object terms (see Filter);
// nil unless it is an import entry.
func (b *Builder) Filter() []byte { return b.terms.filter() }

// Seal appends the revision, commit time and previous entry's hash, and
// returns the entry's encoding and hash. The value is the Builder's
// buffer: use it before the next Reset.
func (b *Builder) Seal(rev storage.Revision, committedAt time.Time, prev storage.AuditHash) (value []byte, h storage.AuditHash) {
	b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(rev))
	b.buf = binary.BigEndian.AppendUint64(b.buf, uint64(committedAt.UnixNano()))
	b.buf = append(b.buf, prev[:]...)
	b.h.Write(b.buf[b.hashed:])
	// Summing into the buffer, not into h, keeps h off the heap.
	b.buf = b.h.Sum(b.buf)
	b.hashed = len(b.buf)
	copy(h[:], b.buf[len(b.buf)-hashLen:])
	return b.buf, h
}

func compareLabels(a, b storage.Label) int {
	return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// trailer returns the trailer of an encoded entry, or false when the
// value is too short or of another version.
func trailer(value []byte) ([]byte, bool) {
	if len(value) < minLen || value[0] != version {
		return nil, false
	}
	return value[len(value)-hashLen-trailerLen : len(value)-hashLen], true
}

// Revision reads the revision of an encoded entry without decoding it.
func Revision(value []byte) (storage.Revision, error) {
	t, ok := trailer(value)
	if !ok {
		return 0, ErrCorrupt
	}
	return storage.Revision(binary.BigEndian.Uint64(t)), nil
}

// CommittedAt reads the commit time of an encoded entry without decoding it.
func CommittedAt(value []byte) (time.Time, error) {
	t, ok := trailer(value)
	if !ok {
		return time.Time{}, ErrCorrupt
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(t[8:]))).UTC(), nil
}

// HashOf reads the hash an encoded entry carries without decoding it.
func HashOf(value []byte) (storage.AuditHash, error) {
	if _, ok := trailer(value); !ok {
		return storage.AuditHash{}, ErrCorrupt
	}
	return storage.AuditHash(value[len(value)-hashLen:]), nil
}

// Intact reports whether an encoded entry's hash matches its content.
func Intact(value []byte) bool {
	if len(value) < minLen {
		return false
	}
	n := len(value) - hashLen
	return sha256.Sum256(value[:n]) == storage.AuditHash(value[n:])
}

// Decode decodes an encoded entry. It does not check the hash (Intact
// does).
func Decode(value []byte) (storage.AuditEntry, error) {
	e, d, err := decodeHead(value)
	if err != nil {
		return e, err
	}
	// The changes run to the trailer. Each takes at least two bytes, but
	// rarely so few: the first spells out its identity, so sizing for two
	// bytes a change would allocate tens of changes for a one-change entry.
	// Appending grows the slice from a guess of sixteen bytes a change.
	var prev [6]string
	for len(d.b) > 0 && d.err == nil {
		if e.Changes == nil {
			e.Changes = make([]storage.AuditChange, 0, min(len(d.b)/16+1, 1024))
		}
		e.Changes = append(e.Changes, storage.AuditChange{})
		d.change(&e.Changes[len(e.Changes)-1], &prev)
	}
	if d.err != nil {
		return storage.AuditEntry{}, fmt.Errorf("%w: revision %d", ErrCorrupt, e.Revision)
	}
	return e, nil
}

// DecodeTerms returns the index terms of an encoded entry (Terms of its
// Decode) without materializing its changes: an indexer needs them for
// every entry, and an import entry holds thousands of changes.
func DecodeTerms(value []byte) ([]string, error) {
	e, d, err := decodeHead(value)
	if err != nil {
		return nil, err
	}
	s := new(termSet)
	s.meta(e.Kind, e.Metadata.Actor, e.Metadata.Labels)
	s.schema(e.Schema)
	var prev [6]string
	var c storage.AuditChange
	for len(d.b) > 0 && d.err == nil {
		d.changeIdentity(&c, &prev)
		s.change(c.Op, &c.Relationship)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: revision %d", ErrCorrupt, e.Revision)
	}
	return s.sorted(), nil
}

// DecodeHead decodes an encoded entry without its changes: its revision,
// commit time, kind, metadata, schema diff and hashes.
func DecodeHead(value []byte) (storage.AuditEntry, error) {
	e, _, err := decodeHead(value)
	return e, err
}

// decodeHead decodes everything but the changes, and returns the decoder
// positioned at the first change.
func decodeHead(value []byte) (storage.AuditEntry, *decoder, error) {
	var e storage.AuditEntry
	t, ok := trailer(value)
	if !ok {
		return e, nil, ErrCorrupt
	}
	e.Revision = storage.Revision(binary.BigEndian.Uint64(t))
	e.CommittedAt = time.Unix(0, int64(binary.BigEndian.Uint64(t[8:]))).UTC()
	copy(e.PrevHash[:], t[16:])
	copy(e.Hash[:], value[len(value)-hashLen:])
	d := &decoder{b: value[1 : len(value)-hashLen-trailerLen]}
	e.Kind = storage.AuditKind(d.byte())
	e.Metadata.Actor = d.string()
	e.Metadata.Reason = d.string()
	if n := d.count(2); n > 0 {
		e.Metadata.Labels = make([]storage.Label, n)
		for i := range e.Metadata.Labels {
			e.Metadata.Labels[i] = storage.Label{Key: d.string(), Value: d.string()}
		}
	}
	if n := d.count(4); n > 0 {
		e.Schema = make([]storage.SchemaChange, n)
		for i := range e.Schema {
			e.Schema[i] = storage.SchemaChange{Added: d.byte() == 1, Kind: d.string(), Name: d.string(), Detail: d.string()}
		}
	}
	if d.err != nil {
		return storage.AuditEntry{}, nil, fmt.Errorf("%w: revision %d", ErrCorrupt, e.Revision)
	}
	return e, d, nil
}

// decoder reads the encoding; the first failure sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail()
		return make([]byte, max(n, 0))
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte() byte { return d.take(1)[0] }

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[k:]
	return v
}

// count reads a list length, refusing one that the remaining bytes cannot
// hold at minSize bytes per element (so corrupt input cannot make Decode
// allocate more than its input).
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

// bytes reads a length-prefixed byte string, aliasing the input.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) change(c *storage.AuditChange, prev *[6]string) {
	if ctxJSON := d.changeIdentity(c, prev); len(ctxJSON) > 0 && d.err == nil {
		if err := json.Unmarshal(ctxJSON, &c.Relationship.Caveat.Context); err != nil {
			d.fail()
		}
	}
}

// changeIdentity decodes one change into c but for its caveat's context,
// which it returns undecoded (aliasing the input). c's expiration is
// reused when it has one.
func (d *decoder) changeIdentity(c *storage.AuditChange, prev *[6]string) (caveatContext []byte) {
	c.Op = storage.Op(d.byte())
	flags := d.byte()
	for i := range prev {
		if flags&(1<<i) == 0 {
			prev[i] = d.string()
		}
	}
	r := &c.Relationship
	r.Resource.Type, r.Resource.ID, r.Relation = prev[0], prev[1], prev[2]
	r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation = prev[3], prev[4], prev[5]
	r.Caveat = nil
	if flags&flagCaveat != 0 {
		r.Caveat = &graph.Caveat{Name: d.string()}
		caveatContext = d.bytes()
	}
	if flags&flagExpiration != 0 {
		sec, nsec := int64(binary.BigEndian.Uint64(d.take(8))), binary.BigEndian.Uint32(d.take(4))
		t := time.Unix(sec, int64(nsec)).UTC()
		if r.Expiration != nil {
			*r.Expiration = t
		} else {
			r.Expiration = &t
		}
	} else {
		r.Expiration = nil
	}
	return caveatContext
}
