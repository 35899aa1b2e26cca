package check

// TEMPORARY: a slice-backed storage.Reader for the first unit tests, to be
// replaced by the in-memory Pebble engine as soon as it is committed.

import (
	"context"
	"iter"
	"slices"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

type sliceReader struct {
	rev  storage.Revision
	rels []graph.Relationship
}

func (r *sliceReader) Revision() storage.Revision { return r.rev }

func (r *sliceReader) ReadSchema(context.Context) (storage.StoredSchema, error) {
	return storage.StoredSchema{}, nil
}

func subjectMatches(f *storage.SubjectFilter, s graph.SubjectRef) bool {
	if f == nil {
		return true
	}
	if f.Type != "" && f.Type != s.Object.Type {
		return false
	}
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, s.Object.ID) {
		return false
	}
	return f.Relation == nil || *f.Relation == s.Relation
}

func live(rel graph.Relationship, now time.Time) bool {
	if now.IsZero() {
		now = time.Now()
	}
	return rel.Expiration == nil || rel.Expiration.After(now)
}

func (r *sliceReader) QueryRelationships(_ context.Context, f storage.Filter, o storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for _, rel := range r.rels {
			if (f.ResourceType == "" || f.ResourceType == rel.Resource.Type) &&
				(len(f.ResourceIDs) == 0 || slices.Contains(f.ResourceIDs, rel.Resource.ID)) &&
				(f.Relation == "" || f.Relation == rel.Relation) && subjectMatches(f.Subject, rel.Subject) && live(rel, o.Now) {
				if !yield(rel, nil) {
					return
				}
			}
		}
	}
}

func (r *sliceReader) ReverseQueryRelationships(_ context.Context, f storage.ReverseFilter, o storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	rels := slices.Clone(r.rels)
	slices.SortFunc(rels, graph.CompareReverse)
	return func(yield func(graph.Relationship, error) bool) {
		for _, rel := range rels {
			if (f.ResourceType == "" || f.ResourceType == rel.Resource.Type) &&
				(f.Relation == "" || f.Relation == rel.Relation) && subjectMatches(&f.Subject, rel.Subject) && live(rel, o.Now) {
				if !yield(rel, nil) {
					return
				}
			}
		}
	}
}
