package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// ErrDeleteLimit is matched by the error of a DeleteRequest with AllOrNothing
// that found more matches than its Limit.
var ErrDeleteLimit = errors.New("more relationships match than the limit allows")

// DeleteRequest is a filtered delete.
type DeleteRequest struct {
	Filter storage.Filter
	// Limit bounds the relationships deleted (0: all).
	Limit int
	// AllOrNothing refuses, deleting nothing, a delete that finds more
	// matches than Limit, where a delete would otherwise remove Limit of
	// them and report More.
	AllOrNothing bool
	// Preconditions must hold at the delete's revision, as a write's do.
	Preconditions []storage.Precondition
	Metadata      storage.WriteMetadata
}

// Delete deletes what req asks in one revision; filter names req.Filter
// in errors. The metadata is checked by ValidateMetadata, and a filter
// naming neither a resource type nor a subject is refused: it would
// delete everything.
//
// A delete with preconditions reads the matches at the head and commits
// their deletion as one write (guarded by the preconditions), so it
// removes at most the per-write limit of relationships (the limit is in
// its error) and reports them in the audit log as a write. A match
// created between that read and the commit survives; the other deletes
// run in the datastore's delete, which takes every match at its
// revision. AllOrNothing's count is read at the head before the delete.
func (w *Writer) Delete(ctx context.Context, req DeleteRequest, filter Path) (storage.DeleteResult, error) {
	if err := ValidateMetadata(req.Metadata); err != nil {
		return storage.DeleteResult{}, err
	}
	f := req.Filter
	if f.ResourceType == "" && f.Subject == nil {
		return storage.DeleteResult{}, Invalid(filter, errors.New("give at least resource_type or subject; an empty filter would delete everything"))
	}
	if req.Limit < 0 {
		return storage.DeleteResult{}, Invalid(filter, fmt.Errorf("limit %d is negative", req.Limit))
	}
	if err := f.Validate(); err != nil {
		return storage.DeleteResult{}, Invalid(filter, err)
	}
	if len(req.Preconditions) > 0 {
		return w.deleteGuarded(ctx, req, filter)
	}
	if req.AllOrNothing && req.Limit > 0 {
		reader, _, err := w.HeadSchema(ctx)
		if err != nil {
			return storage.DeleteResult{}, err
		}
		matches, err := readMatches(ctx, reader, f, req.Limit+1)
		if err != nil {
			return storage.DeleteResult{}, err
		}
		if len(matches) > req.Limit {
			return storage.DeleteResult{}, deleteLimitError(filter, req.Limit)
		}
	}
	res, err := w.engine.DeleteRelationships(ctx, f, req.Limit, req.Metadata)
	if err != nil {
		return storage.DeleteResult{}, fmt.Errorf("delete relationships: %w", err)
	}
	return res, nil
}

// deleteGuarded deletes with preconditions: the matches read at the head,
// deleted by one write that carries the preconditions.
func (w *Writer) deleteGuarded(ctx context.Context, req DeleteRequest, filter Path) (storage.DeleteResult, error) {
	bound := req.Limit
	if bound == 0 || bound > w.maxMutations {
		bound = w.maxMutations
	}
	reader, _, err := w.HeadSchema(ctx)
	if err != nil {
		return storage.DeleteResult{}, err
	}
	matches, err := readMatches(ctx, reader, req.Filter, bound+1)
	if err != nil {
		return storage.DeleteResult{}, err
	}
	more := len(matches) > bound
	switch {
	case more && req.AllOrNothing && req.Limit > 0 && req.Limit <= w.maxMutations:
		return storage.DeleteResult{}, deleteLimitError(filter, req.Limit)
	case more && (req.Limit == 0 || req.Limit > w.maxMutations):
		return storage.DeleteResult{}, Invalid(filter, fmt.Errorf(
			"more than %d relationships match: a delete with preconditions removes at most %d (the limit of updates per write); "+
				"set a limit and allow partial deletions to delete them in parts", w.maxMutations, w.maxMutations))
	}
	if more {
		matches = matches[:bound]
	}
	muts := make([]storage.Mutation, len(matches))
	for i, m := range matches {
		muts[i] = storage.Mutation{Op: storage.OpDelete, Relationship: m}
	}
	rev, err := w.engine.Write(ctx, storage.WriteRequest{Preconditions: req.Preconditions, Mutations: muts, Metadata: req.Metadata})
	if err != nil {
		return storage.DeleteResult{}, err
	}
	return storage.DeleteResult{Revision: rev, Deleted: len(muts), More: more}, nil
}

// deleteLimitError is the error of an AllOrNothing delete that found more
// than limit matches.
func deleteLimitError(filter Path, limit int) error {
	return Invalid(filter, marked{ErrDeleteLimit,
		fmt.Errorf("found more than %d relationships to delete and partial deletion was not requested", limit)})
}

// readMatches reads up to n live relationships matching f.
func readMatches(ctx context.Context, reader storage.Reader, f storage.Filter, n int) ([]graph.Relationship, error) {
	var out []graph.Relationship
	for r, err := range reader.QueryRelationships(ctx, f, storage.QueryOptions{Limit: n}) {
		if err != nil {
			return nil, fmt.Errorf("read relationships to delete: %w", err)
		}
		if out = append(out, r); len(out) == n {
			break
		}
	}
	return out, nil
}
