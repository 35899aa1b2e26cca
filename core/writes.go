package core

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"time"

	"github.com/pembadb/pemba/graph"
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

// ErrTooManyUpdates is matched by the error of a write with more updates
// than the per-write limit.
var ErrTooManyUpdates = errors.New("too many updates in one write")

// marked is err, also matching mark (errors.Is) without changing its
// message.
type marked struct {
	mark error
	err  error
}

func (m marked) Error() string        { return m.err.Error() }
func (m marked) Unwrap() error        { return m.err }
func (m marked) Is(target error) bool { return target == m.mark }

// Writer orders every write: see the comment at the top of this file.
// It is safe for concurrent use.
type Writer struct {
	engine  storage.Engine
	revs    *Revisions
	schemas *Schemas
	// maxMutations caps the updates of one WriteRelationships.
	maxMutations int
	// importBuffer holds the bytes every import holds buffered (see
	// Limits.MaxImportBuffer).
	importBuffer *semaphore.Weighted
	importMax    int64
	// imported, when set, hears each import that committed
	// relationships once it ends (see OnImported).
	imported func(committed int, last storage.Revision)
}

// OnImported has f told, when an import that committed relationships
// ends (finished or stopped by an error), how many it committed and the
// revision of its last batch: what a bulk load leaves stale, such as a
// server's shared subject sets, is recomputed then rather than on the
// first requests that need it. Call it before the first import.
func (w *Writer) OnImported(f func(committed int, last storage.Revision)) { w.imported = f }

// NewWriter writes to engine, reading schemas through schemas and heads
// through revs; one WriteRelationships takes at most limits'
// MaxWriteRelationships updates, and its imports together buffer at most
// MaxImportBuffer bytes.
func NewWriter(engine storage.Engine, revs *Revisions, schemas *Schemas, limits Limits) *Writer {
	limits = limits.WithDefaults()
	return &Writer{engine: engine, revs: revs, schemas: schemas, maxMutations: limits.MaxWriteRelationships,
		importBuffer: semaphore.NewWeighted(limits.MaxImportBuffer), importMax: limits.MaxImportBuffer}
}

// HeadSchema returns a reader at the head and the schema in force there
// (a zero VersionedSchema when none has been written).
func (w *Writer) HeadSchema(ctx context.Context) (storage.Reader, VersionedSchema, error) {
	head, err := w.revs.Head(ctx)
	if err != nil {
		return nil, VersionedSchema{}, err
	}
	reader, sch, err := w.schemas.At(ctx, w.engine, head)
	if errors.Is(err, ErrNoSchema) {
		return reader, VersionedSchema{}, nil
	}
	return reader, sch, err
}

// WriteRelationships checks req's metadata (ValidateMetadata) and its
// mutations — at least one, at most the limit, each relationship once —
// validates them against the head schema and writes them guarded by that
// schema, validating again if a schema write commits in between. list names the request's list of updates in
// errors: update i is list[i], its relationship list[i].relationship.
func (w *Writer) WriteRelationships(ctx context.Context, req storage.WriteRequest, list string) (storage.Revision, error) {
	if err := ValidateMetadata(req.Metadata); err != nil {
		return 0, err
	}
	n := len(req.Mutations)
	if n == 0 {
		return 0, Invalid(Field(list), errors.New("empty: a write needs at least one update"))
	}
	if n > w.maxMutations {
		return 0, Invalid(Field(list), marked{ErrTooManyUpdates, fmt.Errorf("%d updates exceed the limit of %d per write; use ImportRelationships (pemba import) for bulk loads",
			n, w.maxMutations)})
	}
	field := func(i int) Path { return Path{fmt.Sprintf("%s[%d]", list, i), "relationship"} }
	seen := make(map[graph.Key]int, n)
	for i, m := range req.Mutations {
		k := m.Relationship.Key()
		if j, dup := seen[k]; dup {
			return 0, Invalid(field(i), fmt.Errorf("%s also appears in %s[%d]; a relationship may be updated once per write", k, list, j))
		}
		seen[k] = i
	}
	for attempt := 1; ; attempt++ {
		_, sch, err := w.HeadSchema(ctx)
		if err != nil {
			return 0, err
		}
		if sch.Schema == nil {
			return 0, ErrNoSchema
		}
		for i, m := range req.Mutations {
			if m.Op == storage.OpDelete {
				continue // deleting what the schema no longer allows is always fine
			}
			if err := ValidateRelationship(sch.Schema, m.Relationship, field(i)); err != nil {
				return 0, err
			}
		}
		req.SchemaRevision = sch.WrittenAt
		rev, err := w.engine.Write(ctx, req)
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

// DeleteRelationships deletes up to limit (0: all) relationships matching
// f in one revision, recorded with meta: Delete without preconditions.
func (w *Writer) DeleteRelationships(ctx context.Context, f storage.Filter, limit int, meta storage.WriteMetadata, filter Path) (storage.DeleteResult, error) {
	return w.Delete(ctx, DeleteRequest{Filter: f, Limit: limit, Metadata: meta}, filter)
}

// errSchemaMoved aborts a schema write whose audit diff was computed
// against a schema that is no longer the newest one at the head. It is a
// storage.ErrSchemaChanged, so that when schema writes through other
// servers keep committing first until WriteSchema gives up, the client is
// told to retry rather than shown an internal error.
var errSchemaMoved = fmt.Errorf("%w: another schema write committed first", storage.ErrSchemaChanged)

// WriteSchema stores next (its source text), recorded with meta (checked
// by ValidateMetadata), if no stored relationship would be orphaned by
// it. The orphan count runs in the write's critical section against the
// schema in force there, so no relationship write can slip between the
// count and the commit. The audit log records what next changes
// (SchemaChanges) against the schema it replaces: computed before the
// write from the head schema, and checked in the critical section to be
// still the one in force (else computed again).
func (w *Writer) WriteSchema(ctx context.Context, text string, next *schema.Schema, meta storage.WriteMetadata) (storage.Revision, error) {
	if err := ValidateMetadata(meta); err != nil {
		return 0, err
	}
	for attempt := 1; ; attempt++ {
		rev, err := w.writeSchema(ctx, text, next, meta)
		if !errors.Is(err, errSchemaMoved) || attempt == maxSchemaRetries {
			return rev, err
		}
		if err := pause(ctx, attempt); err != nil {
			return 0, err
		}
	}
}

// writeSchema makes one attempt of WriteSchema.
func (w *Writer) writeSchema(ctx context.Context, text string, next *schema.Schema, meta storage.WriteMetadata) (storage.Revision, error) {
	_, base, err := w.HeadSchema(ctx)
	if err != nil {
		return 0, err
	}
	check := func(ctx context.Context, head storage.Reader) error {
		stored, err := head.ReadSchema(ctx)
		if err != nil {
			return fmt.Errorf("read the schema in force: %w", err)
		}
		if stored.Revision != base.WrittenAt {
			return errSchemaMoved
		}
		prev, err := w.schemas.Compiled(stored)
		if errors.Is(err, ErrNoSchema) {
			return nil
		}
		if err != nil {
			return err
		}
		orphans, err := Orphans(ctx, head, prev, next)
		if err != nil {
			return fmt.Errorf("count relationships the schema change affects: %w", err)
		}
		if len(orphans) > 0 {
			return OrphansError(orphans)
		}
		return nil
	}
	rev, err := w.engine.WriteSchema(ctx, storage.SchemaWrite{
		Schema:   storage.StoredSchema{Text: text},
		Metadata: meta,
		Check:    check,
		Diff:     SchemaChanges(base.Schema, next),
	})
	var orphans *orphansError
	if errors.As(err, &orphans) {
		return 0, orphans // the client's answer, without the engine's wrapping
	}
	if errors.Is(err, errSchemaMoved) {
		return 0, errSchemaMoved
	}
	if err != nil {
		return 0, fmt.Errorf("write schema: %w", err)
	}
	w.revs.Advance(rev)
	return rev, nil
}
