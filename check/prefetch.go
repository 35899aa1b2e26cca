package check

import (
	"context"
	"fmt"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// prefetchRows bounds the relationships one object may contribute to a
// prefetch; an object with more is read relation by relation instead.
const prefetchRows = 32

// prefetch reads every relationship of the objects in one scan, before a
// permission on them is evaluated: a permission such as
// `viewer + owner + parent->view` then costs one storage query per object
// instead of one per relation and subject kind. Objects with many
// relationships (large groups) are left to targeted queries, and the engine
// remembers them so later evaluations do not read their first rows in vain;
// ev.rows holds only complete object rows.
func (ev *evaluation) prefetch(typ string, ids []string) error {
	want, shared := ids, true // want shares ids until an ID is left out
	for i, id := range ids {
		k := graph.ObjectRef{Type: typ, ID: id}
		_, have := ev.rows[k]
		if !have && !ev.eng.large.Contains(k) {
			if !shared {
				want = append(want, id)
			}
			continue
		}
		if shared {
			want, shared = append(make([]string, 0, len(ids)-1), ids[:i]...), false
		}
	}
	if len(want) == 0 {
		return nil
	}
	if ev.rows == nil {
		ev.rows = make(map[graph.ObjectRef][]graph.Relationship)
	}
	if or, ok := ev.reader.(objectReader); ok {
		return ev.prefetchObjects(or, typ, want)
	}
	limit := prefetchRows * len(want)
	// Results come in resource ID order, so each object's rows are a run.
	rows, err := ev.queryAll(storage.Filter{ResourceType: typ, ResourceIDs: want}, storage.QueryOptions{Now: ev.now, Limit: limit})
	if err != nil {
		return fmt.Errorf("query %s: %w", typ, err)
	}
	n, last := len(rows), ""
	if n > 0 {
		last = rows[n-1].Resource.ID
	}
	complete := func(id string) bool { return n < limit || id < last }
	for start := 0; start < len(rows); {
		end := start + 1
		for end < len(rows) && rows[end].Resource.ID == rows[start].Resource.ID {
			end++
		}
		k := graph.ObjectRef{Type: typ, ID: rows[start].Resource.ID}
		if end-start >= prefetchRows {
			ev.eng.large.Add(k, struct{}{})
		}
		if complete(k.ID) {
			ev.rows[k] = rows[start:end:end]
		}
		start = end
	}
	for _, id := range want {
		k := graph.ObjectRef{Type: typ, ID: id}
		if _, ok := ev.rows[k]; !ok && complete(id) {
			ev.rows[k] = noRows
		}
	}
	return nil
}

// objectReader reads a batch of objects' rows object by object, sharing
// each object's rows between batches, as storage/readcache's readers do
// (see readcache's QueryObjects).
type objectReader interface {
	QueryObjects(ctx context.Context, typ string, ids []string, perObject int, opts storage.QueryOptions) ([][]graph.Relationship, error)
}

// prefetchObjects is prefetch through an objectReader: an object with
// prefetchRows rows or more is remembered as large and left to targeted
// queries, as is one whose rows did not all come.
func (ev *evaluation) prefetchObjects(or objectReader, typ string, want []string) error {
	ev.eng.queries.Add(1)
	got, err := or.QueryObjects(ev.ctx, typ, want, prefetchRows, storage.QueryOptions{Now: ev.now})
	if err != nil {
		return fmt.Errorf("query %s: %w", typ, err)
	}
	for i, id := range want {
		rows := got[i]
		if rows == nil {
			continue // cut off by the batch's limit
		}
		k := graph.ObjectRef{Type: typ, ID: id}
		switch {
		case len(rows) >= prefetchRows:
			ev.eng.large.Add(k, struct{}{})
		case len(rows) == 0:
			ev.rows[k] = noRows
		default:
			ev.rows[k] = rows[:len(rows):len(rows)]
		}
	}
	return nil
}

// noRows is the complete (empty) rows of an object without relationships.
var noRows = []graph.Relationship{}

// sliceReader hands back a whole forward result at once, shared and
// read-only, as storage/readcache's readers do: a cached result is then
// kept without copying it.
type sliceReader interface {
	QueryRelationshipSlice(ctx context.Context, f storage.Filter, opts storage.QueryOptions) ([]graph.Relationship, error)
}

// queryAll reads the whole result of f. The slice may be shared: the
// evaluation only reads it and keeps sub-slices whose capacity ends where
// their length does.
func (ev *evaluation) queryAll(f storage.Filter, opts storage.QueryOptions) ([]graph.Relationship, error) {
	ev.eng.queries.Add(1)
	if sr, ok := ev.reader.(sliceReader); ok {
		return sr.QueryRelationshipSlice(ev.ctx, f, opts)
	}
	rows := make([]graph.Relationship, 0, 8*len(f.ResourceIDs))
	for r, err := range ev.reader.QueryRelationships(ev.ctx, f, opts) {
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// prefetched calls fn for each prefetched relationship of relation rel on
// the objects, and reports false (calling nothing) unless every object's
// rows are complete.
func (ev *evaluation) prefetched(typ string, ids []string, rel string, fn func(graph.Relationship)) bool {
	return ev.prefetchedEach(typ, ids, rel, func(r *graph.Relationship) { fn(*r) })
}

// prefetchedEach is prefetched handing fn a pointer into the prefetched
// rows, which are shared and read-only.
func (ev *evaluation) prefetchedEach(typ string, ids []string, rel string, fn func(*graph.Relationship)) bool {
	// Look each object up once: a batch's rows are gathered first, on the
	// stack for the usual few objects, and handed out once all are found.
	var small [16][]graph.Relationship
	all, ok := ev.prefetchedRows(typ, ids, small[:0])
	if !ok {
		return false
	}
	for _, rows := range all {
		for k := range rows {
			if rows[k].Relation == rel {
				fn(&rows[k])
			}
		}
	}
	return true
}

// prefetchedRows appends to buf the prefetched rows of each of ids, and
// reports false unless every object's rows are complete.
func (ev *evaluation) prefetchedRows(typ string, ids []string, buf [][]graph.Relationship) ([][]graph.Relationship, bool) {
	if ev.rows == nil {
		return nil, false
	}
	for _, id := range ids {
		rows, ok := ev.rows[graph.ObjectRef{Type: typ, ID: id}]
		if !ok {
			return nil, false
		}
		buf = append(buf, rows)
	}
	return buf, true
}

// read calls fn for each relationship of f (a forward filter on ids of
// one relation), from prefetched rows when complete, else from storage.
func (ev *evaluation) read(f storage.Filter, fn func(graph.Relationship)) error {
	return ev.readEach(f, func(r *graph.Relationship) { fn(*r) })
}

// readEach is read handing fn a pointer to each relationship, which stays
// valid for the evaluation and must not be written through: into the
// prefetched rows, or into a slice of the rows read from storage.
func (ev *evaluation) readEach(f storage.Filter, fn func(*graph.Relationship)) error {
	if ev.prefetchedEach(f.ResourceType, f.ResourceIDs, f.Relation, func(r *graph.Relationship) {
		if subjectMatches(f.Subject, r.Subject) {
			fn(r)
		}
	}) {
		return nil
	}
	var rows []graph.Relationship
	if err := ev.query(f, func(r graph.Relationship) { rows = append(rows, r) }); err != nil {
		return err
	}
	for k := range rows {
		fn(&rows[k])
	}
	return nil
}

// subjectMatches reports whether s passes the subject filter f (nil: any).
func subjectMatches(f *storage.SubjectFilter, s graph.SubjectRef) bool {
	if f == nil {
		return true
	}
	if f.Type != s.Object.Type {
		return false
	}
	if f.Relation != nil && *f.Relation != s.Relation {
		return false
	}
	if len(f.IDs) == 0 {
		return true
	}
	for _, id := range f.IDs {
		if id == s.Object.ID {
			return true
		}
	}
	return false
}
