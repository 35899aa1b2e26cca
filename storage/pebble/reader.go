package pebble

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// reader reads the store as of one revision. It keeps nothing open between
// queries; every query borrows a Pebble iterator from the engine's pool
// (see openIter) and returns it.
type reader struct {
	e   *Engine
	rev storage.Revision
	// writing marks the reader a SchemaWrite's Check gets: it reads the
	// last applied revision holding writeMu (possibly above the published
	// head) while the caller already holds the close lock, so it neither
	// takes that lock again nor checks the revision is readable.
	writing bool
}

func (r *reader) Revision() storage.Revision { return r.rev }

// QueryRelationships streams the relationships matching f, in forward order.
func (r *reader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		if err := validateQuery(f.Validate(), opts); err != nil {
			yield(graph.Relationship{}, fmt.Errorf("query relationships: %w", err))
			return
		}
		p := newPlan().forward(&f)
		defer p.release()
		if err := r.e.query(ctx, r.rev, r.writing, p, opts, yield); err != nil {
			yield(graph.Relationship{}, fmt.Errorf("query relationships: %w", err))
		}
	}
}

// ReverseQueryRelationships streams the relationships matching f, in
// reverse (subject-first) order.
func (r *reader) ReverseQueryRelationships(ctx context.Context, f storage.ReverseFilter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		if err := validateQuery(f.Validate(), opts); err != nil {
			yield(graph.Relationship{}, fmt.Errorf("reverse query relationships: %w", err))
			return
		}
		p := newPlan().reverse(&f)
		defer p.release()
		if err := r.e.query(ctx, r.rev, r.writing, p, opts, yield); err != nil {
			yield(graph.Relationship{}, fmt.Errorf("reverse query relationships: %w", err))
		}
	}
}

func validateQuery(filterErr error, opts storage.QueryOptions) error {
	if filterErr != nil {
		return filterErr
	}
	return opts.Validate()
}

// ReadSchema returns the newest schema version at or before the revision.
func (r *reader) ReadSchema(ctx context.Context) (storage.StoredSchema, error) {
	if !r.writing {
		release, err := r.e.use()
		if err != nil {
			return storage.StoredSchema{}, err
		}
		defer release()
	}
	it, err := r.e.db.NewIterWithContext(ctx, &pdb.IterOptions{
		LowerBound: schemaKey(r.rev), UpperBound: []byte{spaceSchema + 1}})
	if err != nil {
		return storage.StoredSchema{}, fmt.Errorf("read schema: %w", err)
	}
	defer it.Close()
	if !r.writing {
		if err := r.e.checkReadable(r.rev); err != nil {
			return storage.StoredSchema{}, fmt.Errorf("read schema: %w", err)
		}
	}
	if !it.First() {
		return storage.StoredSchema{}, it.Error()
	}
	rev := descRevision(it.Key()[1:])
	if c := r.e.schema.Load(); c != nil && c.Revision == rev {
		return *c, nil
	}
	s, err := decodeSchema(it.Value(), rev)
	if err != nil {
		return storage.StoredSchema{}, fmt.Errorf("read schema at %d: %w", r.rev, err)
	}
	if c := r.e.schema.Load(); c == nil || c.Revision < rev {
		r.e.schema.CompareAndSwap(c, &s)
	}
	return s, nil
}

// maxPrefixes caps how many key ranges one query expands into; filters
// beyond it are applied to the decoded keys instead.
const maxPrefixes = 4096

// plan is a query turned into key ranges over one index plus the
// per-component filters the ranges do not already guarantee. Plans are
// pooled: a point query allocates nothing for its plan.
type plan struct {
	idx index
	// Component i must equal one[i] when has[i] and many[i] is nil, or be
	// one of many[i] (sorted, distinct) when many[i] is not nil.
	has  [6]bool
	one  [6]string
	many [6][]string
	// idPrefix, when set, is what component 1 (the resource ID of a
	// forward query) must start with. A valid filter with a prefix fixes
	// component 0 and not component 1, so the prefix always extends the
	// one key prefix and matches needs no check of its own.
	idPrefix string
	// depth is how many leading components the prefixes fix.
	depth    int
	prefixes [][]byte
	buf      []byte // backs prefixes when there is only one
}

var planPool = sync.Pool{New: func() any { return new(plan) }}

func newPlan() *plan { return planPool.Get().(*plan) }

func (p *plan) release() {
	prefixes, buf := p.prefixes[:0], p.buf[:0]
	*p = plan{prefixes: prefixes, buf: buf}
	planPool.Put(p)
}

func (p *plan) setOne(i int, v string) { p.has[i], p.one[i] = true, v }

func (p *plan) setMany(i int, vs []string) {
	switch len(vs) {
	case 0:
	case 1:
		p.setOne(i, vs[0])
	default:
		if !sortedDistinct(vs) {
			vs = slices.Compact(slices.Sorted(slices.Values(vs)))
		}
		p.has[i] = true
		p.many[i] = vs
	}
}

func (p *plan) forward(f *storage.Filter) *plan {
	p.idx = forward
	if f.ResourceType != "" {
		p.setOne(0, f.ResourceType)
	}
	p.setMany(1, f.ResourceIDs)
	p.idPrefix = f.ResourceIDPrefix
	if f.Relation != "" {
		p.setOne(2, f.Relation)
	}
	if s := f.Subject; s != nil {
		p.setOne(3, s.Type)
		p.setMany(4, s.IDs)
		if s.Relation != nil {
			p.setOne(5, *s.Relation)
		}
	}
	p.expand()
	return p
}

func (p *plan) reverse(f *storage.ReverseFilter) *plan {
	p.idx = reverse
	p.setOne(0, f.Subject.Type)
	p.setMany(1, f.Subject.IDs)
	if f.Subject.Relation != nil {
		p.setOne(2, *f.Subject.Relation)
	}
	if f.ResourceType != "" {
		p.setOne(3, f.ResourceType)
	}
	if f.Relation != "" {
		p.setOne(5, f.Relation)
	}
	p.expand()
	return p
}

// expand builds the sorted key prefixes from the leading fixed
// components: one prefix in buf while every component has one value, a
// cartesian product once one has several.
func (p *plan) expand() {
	p.buf = append(p.buf[:0], byte(p.idx))
	i := 0
	for ; i < 6 && p.has[i] && p.many[i] == nil; i++ {
		p.buf = appendComponent(p.buf, p.one[i])
	}
	if p.idPrefix != "" && i == 1 && !p.has[1] {
		// The escaped ID prefix (without its terminator) starts the
		// keys of exactly the IDs that start with the prefix.
		p.buf = appendEscaped(p.buf, p.idPrefix)
		p.prefixes = append(p.prefixes[:0], p.buf)
		p.depth = 1
		return
	}
	p.prefixes = append(p.prefixes[:0], p.buf)
	p.depth = i
	for ; i < 6 && p.has[i]; i++ {
		vals := p.many[i]
		if vals == nil {
			vals = []string{p.one[i]}
		}
		if len(p.prefixes)*len(vals) > maxPrefixes {
			break
		}
		next := make([][]byte, 0, len(p.prefixes)*len(vals))
		for _, pre := range p.prefixes {
			for _, v := range vals {
				next = append(next, appendComponent(slices.Clip(pre), v))
			}
		}
		p.prefixes = next
		p.depth = i + 1
	}
}

func sortedDistinct(vs []string) bool {
	for i := 1; i < len(vs); i++ {
		if vs[i-1] >= vs[i] {
			return false
		}
	}
	return true
}

// matches checks the components the prefixes do not fix.
func (p *plan) matches(comps *[6][]byte) bool {
	for i := p.depth; i < 6; i++ {
		if !p.has[i] {
			continue
		}
		if p.many[i] == nil {
			if string(comps[i]) != p.one[i] {
				return false
			}
			continue
		}
		if _, found := slices.BinarySearch(p.many[i], string(comps[i])); !found {
			return false
		}
	}
	return true
}

// scratch holds a query's reusable buffers.
type scratch struct {
	lo, hi, body, seek, after []byte
	// comps and pl are handed to visit by pointer; living here keeps
	// them off the heap.
	comps [6][]byte
	pl    payload
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// query runs a plan at rev and yields visible matches as relationships.
// It returns an error only when it has not yielded one; a false from yield
// stops it quietly.
func (e *Engine) query(ctx context.Context, rev storage.Revision, writing bool, p *plan, opts storage.QueryOptions,
	yield func(graph.Relationship, error) bool) error {
	if !writing {
		release, err := e.use()
		if err != nil {
			return err
		}
		defer release()
	}
	return e.scan(ctx, rev, !writing, p, opts, func(body []byte, comps *[6][]byte, _ []byte, pl *payload) (bool, error) {
		r := p.idx.relationship(body, comps)
		if err := pl.apply(&r); err != nil {
			return false, fmt.Errorf("value of %q: %w", body, err)
		}
		return yield(r, nil), nil
	})
}

// visitFunc receives one visible match: its key body and components
// (valid only during the call), its raw value and decoded payload. It
// returns false to stop.
type visitFunc func(body []byte, comps *[6][]byte, value []byte, pl *payload) (bool, error)

// scan runs a plan at rev and visits the visible matches, at most
// opts.Limit of them. The caller holds the close lock. verify checks that
// rev is still readable once the iterator is open; writers scanning the
// last applied revision under writeMu (possibly above the published head)
// pass false.
func (e *Engine) scan(ctx context.Context, rev storage.Revision, verify bool, p *plan, opts storage.QueryOptions, visit visitFunc) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := scratchPool.Get().(*scratch)
	defer func() {
		s.pl = payload{} // it aliases Pebble's memory
		scratchPool.Put(s)
	}()

	var after []byte
	if opts.After != nil {
		after = afterVersions(s.after[:0], p.idx.appendBody(s.seek[:0], opts.After))
		s.after = after
	}
	// Readers borrow pooled iterators (see openIter); writers, which may
	// read above the head, open their own. pi.it is nil until the first
	// prefix opens it.
	var pi pooledIter
	defer func() {
		switch {
		case pi.it == nil:
		case verify && err == nil:
			e.iters.put(pi)
		default:
			pi.it.Close()
		}
	}()
	now := opts.Now
	count := 0
	for _, pre := range p.prefixes {
		s.lo = append(s.lo[:0], pre...)
		s.hi = prefixEnd(s.hi[:0], pre)
		if after != nil && bytes.Compare(after, s.lo) > 0 {
			if bytes.Compare(after, s.hi) >= 0 {
				continue
			}
			s.lo = append(s.lo[:0], after...)
		}
		if pi.it == nil {
			if verify {
				pi, err = e.openIter(rev, s.lo, s.hi)
			} else {
				pi.it, err = e.db.NewIterWithContext(ctx, &pdb.IterOptions{LowerBound: s.lo, UpperBound: s.hi})
			}
			if err != nil {
				return err
			}
			// The iterator is a consistent view; if the floor is still at
			// or below rev now, GC had not started deleting history rev
			// needs when the view was taken.
			if verify {
				if err := e.checkReadable(rev); err != nil {
					return err
				}
			}
		} else {
			pi.it.SetBounds(s.lo, s.hi)
		}
		it := pi.it
		valid := it.First()
		for valid {
			body, vrev, ok := splitVersion(it.Key())
			if !ok {
				return fmt.Errorf("key %q: %w", it.Key(), errCorrupt)
			}
			if vrev > rev {
				// Newer than the snapshot: jump to this body's version at rev.
				s.seek = appendDescRevision(append(s.seek[:0], body...), rev)
				valid = it.SeekGE(s.seek)
				continue
			}
			s.body = append(s.body[:0], body...)
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if s.pl, err = decodePayload(v); err != nil {
				return fmt.Errorf("value of %q: %w", s.body, err)
			}
			if !s.pl.tombstone {
				if err := splitBody(s.body, &s.comps); err != nil {
					return fmt.Errorf("key %q: %w", s.body, err)
				}
				if p.matches(&s.comps) && (s.pl.expiration.IsZero() || !s.pl.expiredAt(nowOr(&now))) {
					more, err := visit(s.body, &s.comps, v, &s.pl)
					if err != nil || !more {
						return err
					}
					count++
					if opts.Limit > 0 && count >= opts.Limit {
						return nil
					}
					if count%256 == 0 && ctx.Err() != nil {
						return ctx.Err()
					}
				}
			}
			valid = skipVersions(it, s)
		}
		if err := it.Error(); err != nil {
			return err
		}
	}
	return nil
}

func nowOr(now *time.Time) time.Time {
	if now.IsZero() {
		*now = time.Now()
	}
	return *now
}

// skipVersions moves past the older versions of s.body: a few Next calls
// cover the usual case of one or two versions, a seek the rest.
func skipVersions(it *pdb.Iterator, s *scratch) bool {
	for range 4 {
		if !it.Next() {
			return false
		}
		k := it.Key()
		if len(k) != len(s.body)+suffixLen || !bytes.HasPrefix(k, s.body) {
			return true
		}
	}
	s.seek = afterVersions(s.seek[:0], s.body)
	return it.SeekGE(s.seek)
}

// relationship builds a Relationship from decoded components with one
// string allocation: every field is a substring of the key body.
func (x index) relationship(body []byte, comps *[6][]byte) graph.Relationship {
	str := string(body)
	var f [6]string
	for i, c := range comps {
		f[i] = substring(str, body, c)
	}
	if x == forward {
		return graph.Relationship{
			Resource: graph.ObjectRef{Type: f[0], ID: f[1]},
			Relation: f[2],
			Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: f[3], ID: f[4]}, Relation: f[5]},
		}
	}
	return graph.Relationship{
		Resource: graph.ObjectRef{Type: f[3], ID: f[4]},
		Relation: f[5],
		Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: f[0], ID: f[1]}, Relation: f[2]},
	}
}

// substring returns c as a substring of str (a copy of body) when c
// aliases body, else a fresh string (an unescaped component).
func substring(str string, body, c []byte) string {
	if len(c) == 0 {
		return ""
	}
	off := cap(body) - cap(c)
	if off >= 0 && off+len(c) <= len(body) && &body[off] == &c[0] {
		return str[off : off+len(c)]
	}
	return string(c)
}
