package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Write ordering.
//
// A relationship write must fit the schema in force when it commits, and a
// schema write must not orphan a relationship committed before it. Both
// rules are enforced inside the datastore's write critical section, not by
// a lock in this process, so they hold with any number of servers on one
// datastore:
//
//   - a relationship write (and every import batch) is validated against
//     the head schema and carries that schema's revision as a guard
//     (storage.WriteRequest.SchemaRevision): the engine refuses it with
//     storage.ErrSchemaChanged if a newer schema committed meanwhile, and
//     the write is validated again against the new one;
//   - a schema write counts the relationships the new schema would no
//     longer accept in its storage.SchemaWrite.Check, which the engine runs
//     after every earlier write committed and before any later one can.
//
// No lock is held across client I/O, and every wait ends with the
// request's context.

// maxSchemaRetries bounds how often one relationship write is validated
// again because schema writes kept committing between its validation and
// its commit.
const maxSchemaRetries = 5

// headSchema returns a reader at the head and the schema in force there
// (a zero core.VersionedSchema when none has been written).
func (s *Server) headSchema(ctx context.Context) (storage.Reader, core.VersionedSchema, error) {
	head, err := s.revs.Head(ctx)
	if err != nil {
		return nil, core.VersionedSchema{}, err
	}
	reader, sch, err := s.schemas.At(ctx, s.engine, head)
	if errors.Is(err, core.ErrNoSchema) {
		return reader, core.VersionedSchema{}, nil
	}
	return reader, sch, err
}

// writeRelationships validates req's mutations against the head schema
// (field names mutation i in errors) and writes them guarded by that
// schema, validating again if a schema write commits in between.
func (s *Server) writeRelationships(ctx context.Context, req storage.WriteRequest, field func(i int) string) (storage.Revision, error) {
	for attempt := 1; ; attempt++ {
		_, sch, err := s.headSchema(ctx)
		if err != nil {
			return 0, err
		}
		if sch.Schema == nil {
			return 0, core.ErrNoSchema
		}
		for i, m := range req.Mutations {
			if m.Op == storage.OpDelete {
				continue // deleting what the schema no longer allows is always fine
			}
			if err := validateAgainstSchema(sch.Schema, m.Relationship, field(i)); err != nil {
				return 0, err
			}
		}
		req.SchemaRevision = sch.WrittenAt
		rev, err := s.engine.Write(ctx, req)
		if !errors.Is(err, storage.ErrSchemaChanged) || attempt == maxSchemaRetries {
			return rev, err
		}
		if err := pause(ctx, attempt); err != nil {
			return 0, err
		}
	}
}

// pause waits a little longer after each attempt, so a schema write whose
// commit is not yet visible at the head becomes visible; it ends with ctx.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(attempt) * 2 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeSchema stores next (source text) if no stored relationship would be
// orphaned by it. The orphan count runs in the write's critical section
// against the schema in force there, so no relationship write can slip
// between the count and the commit.
func (s *Server) writeSchema(ctx context.Context, text string, next *schema.Schema, meta storage.WriteMetadata) (storage.Revision, error) {
	check := func(ctx context.Context, head storage.Reader) error {
		stored, err := head.ReadSchema(ctx)
		if err != nil {
			return fmt.Errorf("read the schema in force: %w", err)
		}
		prev, err := s.schemas.Compiled(stored)
		if errors.Is(err, core.ErrNoSchema) {
			return nil
		}
		if err != nil {
			return err
		}
		orphans, err := findOrphans(ctx, head, prev, next)
		if err != nil {
			return fmt.Errorf("count relationships the schema change affects: %w", err)
		}
		if len(orphans) > 0 {
			return orphanError(orphans)
		}
		return nil
	}
	rev, err := s.engine.WriteSchema(ctx, storage.SchemaWrite{
		Schema:   storage.StoredSchema{Text: text},
		Metadata: meta,
		Check:    check,
	})
	var orphans *orphansError
	if errors.As(err, &orphans) {
		return 0, orphans // the client's answer, without the engine's wrapping
	}
	if err != nil {
		return 0, fmt.Errorf("write schema: %w", err)
	}
	s.revs.Advance(rev)
	return rev, nil
}
