package audit

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"iter"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// position orders events: by time, then written before derived
// expirations at the same instant, then by revision and index in the
// entry. Commit times never go back, so written events in revision order
// are in position order too.
type position struct {
	time    int64 // Unix ns
	expired bool
	rev     storage.Revision
	index   int
}

func (ev *Event) position() position {
	return position{time: ev.Time.UnixNano(), expired: ev.Kind == Expired, rev: ev.Revision, index: ev.index}
}

func comparePositions(a, b position) int {
	ea, eb := 0, 0
	if a.expired {
		ea = 1
	}
	if b.expired {
		eb = 1
	}
	return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(ea, eb), cmp.Compare(a.rev, b.rev), cmp.Compare(a.index, b.index))
}

// before reports whether a comes before b in the query's order.
func (p *query) before(a, b position) bool {
	c := comparePositions(a, b)
	if p.desc {
		return c > 0
	}
	return c < 0
}

// resumed reports whether pos comes after the cursor, if any.
func (p *query) resumed(pos position) bool {
	return p.after == nil || p.before(*p.after, pos)
}

const cursorVersion = 1

var errMalformedCursor = errors.New("malformed cursor")

func encodeCursor(pos position) string {
	b := []byte{cursorVersion, 0}
	if pos.expired {
		b[1] = 1
	}
	b = binary.BigEndian.AppendUint64(b, uint64(pos.time))
	b = binary.AppendUvarint(b, uint64(pos.rev))
	b = binary.AppendUvarint(b, uint64(pos.index))
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 10 || b[0] != cursorVersion || b[1] > 1 {
		return position{}, errMalformedCursor
	}
	pos := position{expired: b[1] == 1, time: int64(binary.BigEndian.Uint64(b[2:10]))}
	rest := b[10:]
	rev, n := binary.Uvarint(rest)
	if n <= 0 {
		return position{}, errMalformedCursor
	}
	idx, m := binary.Uvarint(rest[n:])
	if m <= 0 || n+m != len(rest) || idx > 1<<31 {
		return position{}, errMalformedCursor
	}
	pos.rev, pos.index = storage.Revision(rev), int(idx)
	return pos, nil
}

// merged interleaves written events and derived expirations in order.
func (p *query) merged(ctx context.Context, log storage.AuditLog) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		nextW, stopW := iter.Pull2(p.written(ctx, log))
		defer stopW()
		nextX, stopX := iter.Pull2(p.expired(ctx, log))
		defer stopX()
		w, errW, okW := nextW()
		x, errX, okX := nextX()
		for okW || okX {
			if errW != nil {
				yield(Event{}, errW)
				return
			}
			if errX != nil {
				yield(Event{}, errX)
				return
			}
			if okW && (!okX || p.before(w.position(), x.position())) {
				if !yield(w, nil) {
					return
				}
				w, errW, okW = nextW()
				continue
			}
			if !yield(x, nil) {
				return
			}
			x, errX, okX = nextX()
		}
	}
}

// written streams the events recorded by entries in [lo, hi], through the
// query's index term when it has one.
func (p *query) written(ctx context.Context, log storage.AuditLog) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if p.empty || !(p.wants(Created) || p.wants(Touched) || p.wants(Deleted) || p.wants(SchemaChanged)) {
			return
		}
		lo, hi := p.lo, p.hi
		for e, err := range p.entries(ctx, log, lo, hi) {
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !p.matchesEntry(&e) {
				continue
			}
			n := len(e.Changes) + len(e.Schema)
			for k := range n {
				i := k
				if p.desc {
					i = n - 1 - k
				}
				ev := writtenEvent(&e, i)
				if !p.wants(ev.Kind) || !p.resumed(ev.position()) {
					continue
				}
				if ev.Kind == SchemaChanged {
					if !p.matchesSchema(&ev.Schema) {
						continue
					}
				} else if !p.matchesRelationship(&ev.Relationship) {
					continue
				}
				if !yield(ev, nil) {
					return
				}
			}
		}
	}
}

// entries streams the decoded entries in [lo, hi] (hi 0: open) that the
// query's term names, or all of them.
func (p *query) entries(ctx context.Context, log storage.AuditLog, lo, hi storage.Revision) iter.Seq2[storage.AuditEntry, error] {
	return func(yield func(storage.AuditEntry, error) bool) {
		if p.term == "" {
			for raw, err := range log.AuditEntries(ctx, lo, hi, p.desc) {
				if err != nil {
					yield(storage.AuditEntry{}, err)
					return
				}
				e, err := auditlog.Decode(raw.Value)
				if !yield(e, err) || err != nil {
					return
				}
			}
			return
		}
		for rev, err := range termRevisions(ctx, log, p.term, lo, hi, p.desc) {
			if err != nil {
				yield(storage.AuditEntry{}, err)
				return
			}
			e, ok, err := readEntry(ctx, log, rev)
			if err != nil {
				yield(storage.AuditEntry{}, err)
				return
			}
			if ok && !yield(e, nil) {
				return
			}
		}
	}
}

// termRevisions streams the revisions in [lo, hi] (hi 0: open) of the
// entries indexed under term. For an object term it also streams the
// import entries whose object filter may hold the object: those are
// indexed by type only (see auditlog.Filter). An import entry named by a
// false positive is decoded and filtered like any other, so it adds work,
// never events.
func termRevisions(ctx context.Context, log storage.AuditLog, term string, lo, hi storage.Revision, desc bool) iter.Seq2[storage.Revision, error] {
	importTerm, ok := auditlog.ImportTermFor(term)
	if !ok {
		return log.AuditTermRevisions(ctx, term, lo, hi, desc)
	}
	return func(yield func(storage.Revision, error) bool) {
		imports := func(yield func(storage.Revision, error) bool) {
			for rev, err := range log.AuditTermRevisions(ctx, importTerm, lo, hi, desc) {
				if err != nil {
					yield(0, err)
					return
				}
				filter, ok, err := log.AuditFilter(ctx, rev)
				if err != nil {
					yield(0, err)
					return
				}
				if (!ok || auditlog.FilterMayContain(filter, term)) && !yield(rev, nil) {
					return
				}
			}
		}
		nextA, stopA := iter.Pull2(log.AuditTermRevisions(ctx, term, lo, hi, desc))
		defer stopA()
		nextB, stopB := iter.Pull2(iter.Seq2[storage.Revision, error](imports))
		defer stopB()
		a, errA, okA := nextA()
		b, errB, okB := nextB()
		for okA || okB {
			if err := errors.Join(errA, errB); err != nil {
				yield(0, err)
				return
			}
			var rev storage.Revision
			switch {
			case okA && okB && a == b:
				rev = a
				a, errA, okA = nextA()
				b, errB, okB = nextB()
			case okA && (!okB || (a < b) != desc):
				rev = a
				a, errA, okA = nextA()
			default:
				rev = b
				b, errB, okB = nextB()
			}
			if !yield(rev, nil) {
				return
			}
		}
	}
}
