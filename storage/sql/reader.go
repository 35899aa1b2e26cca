package sql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// pageSize is how many rows one round trip of a query fetches. Queries
// page with a keyset cursor and hold no connection while the caller
// iterates, so a caller may run other queries inside its loop. A
// variable so tests can page small data.
var pageSize = 1000

// idSpanStart is how many of a query's IDs its first page asks for (see
// pagedByID): more than the batches the check engine reads at once, whose
// rows mostly fit one page.
const idSpanStart = 256

// rowQuerier runs queries: the pool for ordinary readers, the write
// transaction for the reader a SchemaWrite's Check gets.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reader reads the snapshot at rev through db.
type reader struct {
	e   *Engine
	db  rowQuerier
	rev storage.Revision
}

func (r *reader) Revision() storage.Revision { return r.rev }

// QueryRelationships streams the relationships matching f at the
// snapshot, in forward order.
func (r *reader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	if err := errors.Join(f.Validate(), opts.Validate()); err != nil {
		return fail(fmt.Errorf("query relationships: %w", err))
	}
	if len(f.ResourceIDs) > 1 {
		return r.pagedByID(ctx, opts, f.ResourceType, f.ResourceIDs, func(rel graph.Relationship) string { return rel.Resource.ID }, forwardKey,
			func(ids []string, after *[6]string, limit int) *query {
				f := f
				f.ResourceIDs = ids
				return forwardQuery(f, r.rev, nowNanos(opts.Now), after, limit)
			})
	}
	return r.paged(ctx, opts, forwardKey, func(after *[6]string, limit int) *query {
		return forwardQuery(f, r.rev, nowNanos(opts.Now), after, limit)
	})
}

// ReverseQueryRelationships streams the relationships whose subject
// matches f at the snapshot, in reverse order.
func (r *reader) ReverseQueryRelationships(ctx context.Context, f storage.ReverseFilter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	if err := errors.Join(f.Validate(), opts.Validate()); err != nil {
		return fail(fmt.Errorf("reverse query relationships: %w", err))
	}
	if len(f.Subject.IDs) > 1 {
		return r.pagedByID(ctx, opts, f.Subject.Type, f.Subject.IDs, func(rel graph.Relationship) string { return rel.Subject.Object.ID }, reverseKey,
			func(ids []string, after *[6]string, limit int) *query {
				f := f
				f.Subject.IDs = ids
				return reverseQuery(f, r.rev, nowNanos(opts.Now), after, limit)
			})
	}
	return r.paged(ctx, opts, reverseKey, func(after *[6]string, limit int) *query {
		return reverseQuery(f, r.rev, nowNanos(opts.Now), after, limit)
	})
}

// paged runs page queries until the results or opts.Limit run out.
func (r *reader) paged(ctx context.Context, opts storage.QueryOptions, key func(graph.Relationship) [6]string,
	page func(after *[6]string, limit int) *query) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		if err := r.e.checkOpen(); err != nil {
			yield(graph.Relationship{}, err)
			return
		}
		var after *[6]string
		if opts.After != nil {
			k := key(*opts.After)
			after = &k
		}
		remaining := opts.Limit
		for {
			n := pageSize
			if opts.Limit > 0 && remaining < n {
				n = remaining
			}
			rels, ok := r.yieldPage(ctx, page(after, n), yield)
			if !ok {
				return
			}
			remaining -= len(rels)
			if len(rels) < n || opts.Limit > 0 && remaining == 0 {
				return
			}
			k := key(rels[len(rels)-1])
			after = &k
		}
	}
}

// ReadSchema returns the newest schema written at or before the snapshot.
func (r *reader) ReadSchema(ctx context.Context) (storage.StoredSchema, error) {
	if err := r.e.checkOpen(); err != nil {
		return storage.StoredSchema{}, err
	}
	var s storage.StoredSchema
	var rev int64
	err := r.db.QueryRow(ctx, stmtReadSchema, int64(r.rev)).Scan(&s.Text, &s.Compiled, &rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.StoredSchema{}, nil
	}
	if err != nil {
		return storage.StoredSchema{}, fmt.Errorf("read schema at revision %d: %w", r.rev, unavailable(err))
	}
	s.Revision = storage.Revision(rev)
	return s, nil
}

func fail(err error) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) { yield(graph.Relationship{}, err) }
}

// pagedByID is paged for a query on a list of IDs (resource IDs of a
// forward query, subject IDs of a reverse one), the second column of the
// order key, the first being fixed by the filter: each page asks only for
// a span of the IDs, in order, so that PostgreSQL, which gathers every
// row of the IDs it is given and sorts them to cut a page, reads about a
// page's worth of rows per page instead of all the rows left (a batch of
// 800 teams' members, 40,000 rows, took 40 pages of 80 ms each). The span
// starts at idSpanStart IDs, shrinks to the IDs a full page covered, and
// doubles after a page that came back less than half full. first is the
// order key's first column, which the filter fixes; idOf returns a row's
// ID.
func (r *reader) pagedByID(ctx context.Context, opts storage.QueryOptions, first string, ids []string, idOf func(graph.Relationship) string,
	key func(graph.Relationship) [6]string, page func(ids []string, after *[6]string, limit int) *query) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		if err := r.e.checkOpen(); err != nil {
			yield(graph.Relationship{}, err)
			return
		}
		// The columns compare bytewise (COLLATE "C"), as Go strings do.
		sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
		pos := 0
		var after *[6]string
		if opts.After != nil {
			k := key(*opts.After)
			after = &k
			switch {
			case k[0] > first:
				return // every row is before the cursor
			case k[0] == first:
				pos, _ = slices.BinarySearch(sorted, idOf(*opts.After))
			}
		}
		remaining := opts.Limit
		span := idSpanStart
		for pos < len(sorted) {
			n := pageSize
			if opts.Limit > 0 && remaining < n {
				n = remaining
			}
			chunk := sorted[pos:min(pos+span, len(sorted))]
			rels, ok := r.yieldPage(ctx, page(chunk, after, n), yield)
			if !ok {
				return
			}
			remaining -= len(rels)
			if opts.Limit > 0 && remaining == 0 {
				return
			}
			if len(rels) < n {
				// The span is done; the next starts past every row so far.
				pos, after = pos+len(chunk), nil
				if len(rels) < n/2 {
					span = min(2*span, maxIDSpan)
				}
				continue
			}
			last := rels[len(rels)-1]
			k := key(last)
			after = &k
			at, _ := slices.BinarySearch(sorted[pos:], idOf(last))
			span = at + 1 // the IDs this page reached, the last unfinished
			pos += at
		}
	}
}

// yieldPage runs a page query and yields its rows; it returns them, or
// false when the query failed (the error yielded) or the caller stopped.
func (r *reader) yieldPage(ctx context.Context, q *query, yield func(graph.Relationship, error) bool) ([]graph.Relationship, bool) {
	rels, err := queryRelationships(ctx, r.db, q)
	if err != nil {
		yield(graph.Relationship{}, fmt.Errorf("query relationships at revision %d: %w", r.rev, err))
		return nil, false
	}
	for _, rel := range rels {
		if !yield(rel, nil) {
			return nil, false
		}
	}
	return rels, true
}

// maxIDSpan bounds the IDs one page asks for.
const maxIDSpan = 4096

func forwardKey(r graph.Relationship) [6]string {
	return [6]string{r.Resource.Type, r.Resource.ID, r.Relation, r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation}
}

func reverseKey(r graph.Relationship) [6]string {
	return [6]string{r.Subject.Object.Type, r.Subject.Object.ID, r.Subject.Relation, r.Resource.Type, r.Resource.ID, r.Relation}
}

// nowNanos is the expiration clock of a read: t, or the current time.
func nowNanos(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixNano()
}

// queryRelationships runs q and reads every row it returns.
func queryRelationships(ctx context.Context, db rowQuerier, q *query) ([]graph.Relationship, error) {
	rows, err := db.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []graph.Relationship
	for rows.Next() {
		rel, err := scanRelationship(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	return out, unavailable(rows.Err())
}

// scanRelationship reads the columns in prefix, then relColumns.
func scanRelationship(row pgx.Row, prefix ...any) (graph.Relationship, error) {
	var rel graph.Relationship
	var caveatName string
	var caveatContext []byte
	var expires *int64
	dest := append(prefix, &rel.Resource.Type, &rel.Resource.ID, &rel.Relation,
		&rel.Subject.Object.Type, &rel.Subject.Object.ID, &rel.Subject.Relation,
		&caveatName, &caveatContext, &expires)
	if err := row.Scan(dest...); err != nil {
		return rel, err
	}
	c, err := decodeCaveat(caveatName, caveatContext)
	if err != nil {
		return rel, err
	}
	rel.Caveat = c
	if expires != nil {
		t := time.Unix(0, *expires).UTC()
		rel.Expiration = &t
	}
	return rel, nil
}

// relArgs are the relColumns values of rel, for an INSERT.
func relArgs(rel graph.Relationship) ([]any, error) {
	var caveatName string
	var caveatContext []byte // nil is NULL
	if rel.Caveat != nil {
		b, err := storage.EncodeCaveatContext(rel.Caveat.Context)
		if err != nil {
			return nil, err
		}
		caveatName, caveatContext = rel.Caveat.Name, b
	}
	var expires *int64
	if rel.Expiration != nil {
		ns := rel.Expiration.UnixNano()
		expires = &ns
	}
	return []any{rel.Resource.Type, rel.Resource.ID, rel.Relation,
		rel.Subject.Object.Type, rel.Subject.Object.ID, rel.Subject.Relation,
		caveatName, caveatContext, expires}, nil
}

// decodeCaveat rebuilds a relationship's caveat from its columns.
func decodeCaveat(name string, context []byte) (*graph.Caveat, error) {
	if name == "" {
		return nil, nil
	}
	c := &graph.Caveat{Name: name}
	if len(context) > 0 {
		if err := json.Unmarshal(context, &c.Context); err != nil {
			return nil, fmt.Errorf("caveat %s context: %w", name, err)
		}
	}
	return c, nil
}
