package auditlog

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

const version = 1

// headerLen is the fixed-size prefix: version, revision, commit time,
// kind and the previous entry's hash.
const headerLen = 1 + 8 + 8 + 1 + 32

// ErrCorrupt: a stored entry cannot be decoded.
var ErrCorrupt = errors.New("corrupt audit entry")

// Seal encodes e for storage, after setting e.Hash from every other field
// (e.PrevHash included). Labels are stored sorted: e.Metadata.Labels is
// replaced by a sorted copy. The engine stores the returned value under e.Revision
// and makes e.Hash the PrevHash of the next entry it writes.
func Seal(e *storage.AuditEntry) ([]byte, error) {
	e.Metadata.Labels = slices.Clone(e.Metadata.Labels)
	slices.SortFunc(e.Metadata.Labels, func(a, b storage.Label) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	})
	b := make([]byte, 0, headerLen+64+len(e.Changes)*64)
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Revision))
	b = binary.BigEndian.AppendUint64(b, uint64(e.CommittedAt.UnixNano()))
	b = append(b, byte(e.Kind))
	b = append(b, e.PrevHash[:]...)
	b = appendString(b, e.Metadata.Actor)
	b = appendString(b, e.Metadata.Reason)
	b = binary.AppendUvarint(b, uint64(len(e.Metadata.Labels)))
	for _, l := range e.Metadata.Labels {
		b = appendString(appendString(b, l.Key), l.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Schema)))
	for _, s := range e.Schema {
		added := byte(0)
		if s.Added {
			added = 1
		}
		b = append(b, added)
		b = appendString(appendString(appendString(b, s.Kind), s.Name), s.Detail)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Changes)))
	for i := range e.Changes {
		var err error
		if b, err = appendChange(b, &e.Changes[i]); err != nil {
			return nil, fmt.Errorf("audit entry of revision %d: change %d: %w", e.Revision, i, err)
		}
	}
	e.Hash = sha256.Sum256(b)
	return append(b, e.Hash[:]...), nil
}

func appendChange(b []byte, c *storage.AuditChange) ([]byte, error) {
	r := &c.Relationship
	b = append(b, byte(c.Op))
	for _, s := range [...]string{r.Resource.Type, r.Resource.ID, r.Relation,
		r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation} {
		b = appendString(b, s)
	}
	var name string
	var ctxJSON []byte
	if r.Caveat != nil {
		name = r.Caveat.Name
		var err error
		if ctxJSON, err = storage.EncodeCaveatContext(r.Caveat.Context); err != nil {
			return nil, err
		}
		if name == "" {
			return nil, fmt.Errorf("%w: caveat without a name", storage.ErrInvalidArgument)
		}
	}
	b = appendString(b, name)
	b = binary.AppendUvarint(b, uint64(len(ctxJSON)))
	b = append(b, ctxJSON...)
	if r.Expiration == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	return binary.BigEndian.AppendUint64(b, uint64(r.Expiration.UnixNano())), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Revision reads the revision of an encoded entry without decoding it.
func Revision(value []byte) (storage.Revision, error) {
	if len(value) < headerLen+32 || value[0] != version {
		return 0, ErrCorrupt
	}
	return storage.Revision(binary.BigEndian.Uint64(value[1:9])), nil
}

// CommittedAt reads the commit time of an encoded entry without decoding it.
func CommittedAt(value []byte) (time.Time, error) {
	if len(value) < headerLen+32 || value[0] != version {
		return time.Time{}, ErrCorrupt
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(value[9:17]))).UTC(), nil
}

// HashOf reads the hash an encoded entry carries without decoding it.
func HashOf(value []byte) (storage.AuditHash, error) {
	var h storage.AuditHash
	if len(value) < headerLen+32 || value[0] != version {
		return h, ErrCorrupt
	}
	copy(h[:], value[len(value)-32:])
	return h, nil
}

// Intact reports whether an encoded entry's hash matches its content.
func Intact(value []byte) bool {
	if len(value) < headerLen+32 {
		return false
	}
	n := len(value) - 32
	return sha256.Sum256(value[:n]) == storage.AuditHash(value[n:])
}

// Decode decodes an encoded entry. It does not check the hash (Intact
// does).
func Decode(value []byte) (storage.AuditEntry, error) {
	var e storage.AuditEntry
	if len(value) < headerLen+32 || value[0] != version {
		return e, ErrCorrupt
	}
	d := decoder{b: value[:len(value)-32]}
	d.b = d.b[1:]
	e.Revision = storage.Revision(d.uint64())
	e.CommittedAt = time.Unix(0, int64(d.uint64())).UTC()
	e.Kind = storage.AuditKind(d.byte())
	copy(e.PrevHash[:], d.take(32))
	copy(e.Hash[:], value[len(value)-32:])
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
	if n := d.count(10); n > 0 {
		e.Changes = make([]storage.AuditChange, n)
		for i := range e.Changes {
			d.change(&e.Changes[i])
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return storage.AuditEntry{}, fmt.Errorf("%w: revision %d", ErrCorrupt, e.Revision)
	}
	return e, nil
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

func (d *decoder) uint64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

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

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	return string(d.take(int(n)))
}

func (d *decoder) change(c *storage.AuditChange) {
	c.Op = storage.Op(d.byte())
	r := &c.Relationship
	r.Resource.Type, r.Resource.ID, r.Relation = d.string(), d.string(), d.string()
	r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation = d.string(), d.string(), d.string()
	name := d.string()
	ctxJSON := d.take(int(min(d.uvarint(), uint64(len(d.b)+1))))
	if name != "" {
		r.Caveat = &graph.Caveat{Name: name}
		if len(ctxJSON) > 0 && d.err == nil {
			if err := json.Unmarshal(ctxJSON, &r.Caveat.Context); err != nil {
				d.fail()
			}
		}
	}
	if d.byte() == 1 {
		t := time.Unix(0, int64(d.uint64())).UTC()
		r.Expiration = &t
	}
}
