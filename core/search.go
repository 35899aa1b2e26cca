package core

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Bounds of an object search.
const (
	// DefaultSearchLimit is how many objects a search returns when the
	// request names no limit; MaxSearchLimit is the most it may ask for.
	DefaultSearchLimit = 20
	MaxSearchLimit     = 100
	// MaxSearchPrefix bounds a search prefix, in bytes: an object ID is
	// at most that long.
	MaxSearchPrefix = graph.MaxObjectIDBytes
)

// ObjectRole says where a searched object must appear.
type ObjectRole int

const (
	// AnyRole: as a resource or as a subject.
	AnyRole ObjectRole = iota
	// ResourceRole: as the resource of a relationship.
	ResourceRole
	// SubjectRole: as the subject of a relationship.
	SubjectRole
)

// SearchQuery asks for stored objects of Type whose IDs start with
// Prefix, in ID order, after the ID After.
type SearchQuery struct {
	Type, Prefix, After string
	Role                ObjectRole
	Limit               int // 0: DefaultSearchLimit
	Now                 time.Time
}

// Validate checks the query against sch: the type is defined, the prefix
// and cursor are not longer than an ID, the limit is in range. Errors are
// FieldErrors naming "type", "prefix", "after" or "limit".
func (q *SearchQuery) Validate(sch *schema.Schema) error {
	switch {
	case q.Type == "":
		return Invalid(Field("type"), fmt.Errorf("missing"))
	case sch.Definition(q.Type) == nil:
		return Invalid(Field("type"), fmt.Errorf("type %q is not defined in the schema", q.Type))
	case len(q.Prefix) > MaxSearchPrefix:
		return Invalid(Field("prefix"), fmt.Errorf("%d bytes, above the limit of %d (the longest object ID)", len(q.Prefix), MaxSearchPrefix))
	case len(q.After) > MaxSearchPrefix:
		return Invalid(Field("after"), fmt.Errorf("%d bytes, above the limit of %d (the longest object ID)", len(q.After), MaxSearchPrefix))
	case q.Limit < 0 || q.Limit > MaxSearchLimit:
		return Invalid(Field("limit"), fmt.Errorf("%d is out of range: at most %d", q.Limit, MaxSearchLimit))
	}
	return nil
}

// SearchObjects answers a validated query from reader. It skips from one
// distinct ID to the next (one bounded read each), so its cost grows
// with the IDs returned, not with the relationships they have. The
// wildcard "*" is not an object and is never returned.
func SearchObjects(ctx context.Context, reader storage.Reader, q SearchQuery) ([]graph.ObjectRef, error) {
	limit := q.Limit
	if limit == 0 {
		limit = DefaultSearchLimit
	}
	var resources, subjects []string
	var err error
	if q.Role != SubjectRole {
		if resources, err = distinctIDs(ctx, q, limit, resourceStep(reader, q)); err != nil {
			return nil, fmt.Errorf("search %s resources: %w", q.Type, err)
		}
	}
	if q.Role != ResourceRole {
		if subjects, err = distinctIDs(ctx, q, limit, subjectStep(reader, q)); err != nil {
			return nil, fmt.Errorf("search %s subjects: %w", q.Type, err)
		}
	}
	ids := mergeSorted(resources, subjects, limit)
	out := make([]graph.ObjectRef, len(ids))
	for i, id := range ids {
		out[i] = graph.ObjectRef{Type: q.Type, ID: id}
	}
	return out, nil
}

// skipRelation sorts after every relation name, so a cursor carrying it
// skips every relationship of the object before it.
const skipRelation = "~"

// step returns the first ID at or after `from` (after it when skip is
// set) in one index, or ok false when there is none.
type step func(ctx context.Context, from string, skip bool) (id string, ok bool, err error)

func resourceStep(reader storage.Reader, q SearchQuery) step {
	return func(ctx context.Context, from string, skip bool) (string, bool, error) {
		after := graph.Relationship{Resource: graph.ObjectRef{Type: q.Type, ID: from}}
		if skip {
			after.Relation = skipRelation
		}
		f := storage.Filter{ResourceType: q.Type}
		for r, err := range reader.QueryRelationships(ctx, f, storage.QueryOptions{Limit: 1, After: &after, Now: q.Now}) {
			return r.Resource.ID, err == nil, err
		}
		return "", false, nil
	}
}

func subjectStep(reader storage.Reader, q SearchQuery) step {
	return func(ctx context.Context, from string, skip bool) (string, bool, error) {
		after := graph.Relationship{Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: q.Type, ID: from}}}
		if skip {
			after.Subject.Relation = skipRelation
		}
		f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: q.Type}}
		for r, err := range reader.ReverseQueryRelationships(ctx, f, storage.QueryOptions{Limit: 1, After: &after, Now: q.Now}) {
			return r.Subject.Object.ID, err == nil, err
		}
		return "", false, nil
	}
}

// distinctIDs collects up to limit distinct IDs with the query's prefix,
// after q.After, from one index.
func distinctIDs(ctx context.Context, q SearchQuery, limit int, next step) ([]string, error) {
	from, skip := q.Prefix, false
	if q.After != "" && q.After >= q.Prefix {
		from, skip = q.After, true
	}
	var ids []string
	for len(ids) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id, ok, err := next(ctx, from, skip)
		if err != nil {
			return nil, err
		}
		if !ok || !strings.HasPrefix(id, q.Prefix) {
			break
		}
		if id != graph.Wildcard {
			ids = append(ids, id)
		}
		from, skip = id, true
	}
	return ids, nil
}

// mergeSorted merges two sorted lists of distinct IDs into at most limit
// distinct IDs, sorted.
func mergeSorted(a, b []string, limit int) []string {
	out := make([]string, 0, min(limit, len(a)+len(b)))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0] < b[0]):
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0] < a[0]:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}
