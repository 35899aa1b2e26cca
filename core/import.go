package core

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Import commits a stream of relationships batch by batch. Each batch is
// validated against the head schema and committed guarded by it (see
// writes.go), validated again when a schema write got in between; after
// each commit OnCommit hears the running count. Nothing is held between
// batches, so a slow stream holds up no other writer.
type Import struct {
	w    *Writer
	meta storage.WriteMetadata
	size int
	// onCommit is told the running count and revision after each batch.
	onCommit func(committed int, rev storage.Revision) error

	// create commits each batch as CREATEs (see RefuseExisting); inBatch
	// holds the batch's keys then.
	create  bool
	inBatch map[graph.Key]int
	// atomic, when positive, makes the whole stream one batch of at
	// most that many relationships, committed by Finish (see Atomic).
	atomic int

	batch []graph.Relationship
	// held is what the batch holds of the writer's import buffer.
	held      int64
	sch       VersionedSchema
	committed int // relationships of the stream committed so far
	last      storage.Revision
	closed    bool
}

// NewImport starts an import of batches of batchSize relationships, each
// recorded with meta (checked by ValidateMetadata); onCommit runs after
// every committed batch.
func (w *Writer) NewImport(ctx context.Context, batchSize int, meta storage.WriteMetadata,
	onCommit func(committed int, rev storage.Revision) error) (*Import, error) {
	if err := ValidateMetadata(meta); err != nil {
		return nil, err
	}
	imp := &Import{w: w, meta: meta, size: max(batchSize, 1), onCommit: onCommit}
	imp.batch = make([]graph.Relationship, 0, min(imp.size, 1<<14))
	return imp, imp.loadSchema(ctx)
}

// RefuseExisting makes the import create every relationship, as SpiceDB's
// bulk import does: one already stored, or given twice in the stream,
// fails the import with *storage.AlreadyExistsError. Each batch commits
// as one write of CREATEs under the same schema guard and metadata (the
// audit log records it as a write), so the batches before the failing
// one stay committed, as with any import. Call it before the first Add.
func (imp *Import) RefuseExisting() {
	imp.create = true
	imp.inBatch = make(map[graph.Key]int, len(imp.batch))
}

// Atomic makes the import all or nothing, as SpiceDB's bulk import is:
// the stream is buffered and Finish commits it in one revision, so a
// failure anywhere commits none of it. The buffer is bounded by max
// relationships (the limit and its flag are in the error of the one past
// it); committing at the end, not holding a transaction open while the
// client streams, keeps a slow client from holding up other writers.
// Call it before the first Add.
func (imp *Import) Atomic(max int) {
	imp.atomic = max
}

// Committed is how many relationships of the stream are committed.
func (imp *Import) Committed() int { return imp.committed }

// Last is the revision of the last committed batch (0 before the first).
func (imp *Import) Last() storage.Revision { return imp.last }

// Position is the stream position the next relationship takes, counted
// from 0: what a field path names it by.
func (imp *Import) Position() int { return imp.committed + len(imp.batch) }

// Add validates r (field names it in errors) and buffers it, committing
// the batch once it is full.
func (imp *Import) Add(ctx context.Context, r graph.Relationship, field Path) error {
	if err := ValidateRelationship(imp.sch.Schema, r, field); err != nil {
		return err
	}
	if imp.create {
		k := r.Key()
		if _, dup := imp.inBatch[k]; dup {
			return &storage.AlreadyExistsError{Relationship: r}
		}
		imp.inBatch[k] = len(imp.batch)
	}
	if imp.atomic > 0 && len(imp.batch) == imp.atomic {
		return Invalid(field, marked{ErrImportTooLarge, fmt.Errorf(
			"an import is one transaction of at most %d relationships (--max-import-transaction); send the rest in another import", imp.atomic)})
	}
	if n := bufferedBytes(&r); imp.w.importBuffer.TryAcquire(n) {
		imp.held += n
	} else {
		return fmt.Errorf("%w: the server's imports hold %d bytes buffered at most (--max-import-buffer); retry later",
			ErrImportBufferFull, imp.w.importMax)
	}
	imp.batch = append(imp.batch, r)
	if imp.atomic > 0 {
		return nil
	}
	if len(imp.batch) >= imp.size {
		return imp.commit(ctx)
	}
	return nil
}

// ErrImportTooLarge is matched by the error of an Atomic import given more
// relationships than its bound.
var ErrImportTooLarge = errors.New("import too large")

// ErrImportBufferFull is matched by the error of an import whose next
// relationship would take the bytes every import of the writer holds
// buffered past Limits.MaxImportBuffer. Nothing is wrong with the import:
// it can be sent again once others have committed.
var ErrImportBufferFull = errors.New("import buffers full")

// Close gives back what the import holds of its writer's buffer and, if
// it committed relationships, lets the datastore refresh what the load
// left stale (see bulkLoadRefresher), then tells the writer's
// OnImported; an import is closed once its stream ends, whether it
// finished or failed. Closing twice is harmless.
func (imp *Import) Close() {
	imp.release()
	imp.batch = nil
	if imp.committed > 0 && !imp.closed {
		if r, ok := imp.w.engine.(bulkLoadRefresher); ok {
			ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
			r.AfterImport(ctx, imp.committed)
			cancel()
		}
		if imp.w.imported != nil {
			imp.w.imported(imp.committed, imp.last)
		}
	}
	imp.closed = true
}

// bulkLoadRefresher is a datastore that refreshes what a bulk load leaves
// stale once an import stream ends, its batches being separate imports
// to it: PostgreSQL's planner statistics and visibility map (see
// storage/sql's AfterImport). It is best effort and bounded by ctx.
type bulkLoadRefresher interface {
	AfterImport(ctx context.Context, imported int)
}

// refreshTimeout bounds a datastore's refresh after an import: the
// stream's own context may have ended with it.
const refreshTimeout = time.Minute

// release gives back the batch's share of the import buffer.
func (imp *Import) release() {
	if imp.held > 0 {
		imp.w.importBuffer.Release(imp.held)
		imp.held = 0
	}
}

// bufferedBytes estimates the memory a buffered relationship holds: its
// strings, its caveat context and the fixed size of the struct around
// them.
func bufferedBytes(r *graph.Relationship) int64 {
	n := 160 + len(r.Resource.Type) + len(r.Resource.ID) + len(r.Relation) +
		len(r.Subject.Object.Type) + len(r.Subject.Object.ID) + len(r.Subject.Relation)
	if r.Caveat != nil {
		n += 64 + len(r.Caveat.Name) + valueBytes(r.Caveat.Context)
	}
	return int64(n)
}

// valueBytes estimates the memory of a caveat context value.
func valueBytes(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := 48
		for k, x := range v {
			n += 32 + len(k) + valueBytes(x)
		}
		return n
	case []any:
		n := 24
		for _, x := range v {
			n += 16 + valueBytes(x)
		}
		return n
	case string:
		return 16 + len(v)
	default:
		return 16
	}
}

// Finish commits what is buffered. A stream that carried no relationship
// commits nothing and reports the head.
func (imp *Import) Finish(ctx context.Context) error {
	if len(imp.batch) > 0 {
		return imp.commit(ctx)
	}
	if imp.last != 0 {
		return nil
	}
	head, err := imp.w.revs.Head(ctx)
	if err != nil {
		return err
	}
	imp.last = head
	return imp.onCommit(imp.committed, head)
}

// loadSchema reads the head schema the next batches are validated against.
func (imp *Import) loadSchema(ctx context.Context) error {
	_, sch, err := imp.w.HeadSchema(ctx)
	if err != nil {
		return err
	}
	if sch.Schema == nil {
		return ErrNoSchema
	}
	imp.sch = sch
	return nil
}

// commit writes the buffered batch in one revision, guarded by the schema
// it was validated against, validating it again when a schema write got
// in between.
func (imp *Import) commit(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		res, err := imp.write(ctx)
		if err == nil {
			imp.committed += res.Imported
			if n := len(res.Revisions); n > 0 {
				imp.last = res.Revisions[n-1]
			}
			imp.batch = imp.batch[:0]
			imp.release()
			clear(imp.inBatch)
			return imp.onCommit(imp.committed, imp.last)
		}
		if !errors.Is(err, storage.ErrSchemaChanged) || attempt == maxSchemaRetries {
			return err
		}
		if err := pause(ctx, attempt); err != nil {
			return err
		}
		if err := imp.loadSchema(ctx); err != nil {
			return err
		}
		for i, r := range imp.batch {
			if err := ValidateRelationship(imp.sch.Schema, r, Field(fmt.Sprintf("relationships[%d]", imp.committed+i))); err != nil {
				return err
			}
		}
	}
}

// write commits the buffered batch in one revision: the engine's import
// (TOUCH), or one write of CREATEs for RefuseExisting.
func (imp *Import) write(ctx context.Context) (storage.ImportResult, error) {
	if !imp.create {
		return imp.w.engine.Import(ctx, relationshipsOf(imp.batch), storage.ImportOptions{
			BatchSize: len(imp.batch), Metadata: imp.meta, SchemaRevision: imp.sch.WrittenAt,
		})
	}
	muts := make([]storage.Mutation, len(imp.batch))
	for i, r := range imp.batch {
		muts[i] = storage.Mutation{Op: storage.OpCreate, Relationship: r}
	}
	rev, err := imp.w.engine.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: imp.meta, SchemaRevision: imp.sch.WrittenAt})
	if err != nil {
		return storage.ImportResult{}, err
	}
	return storage.ImportResult{Imported: len(muts), Revisions: []storage.Revision{rev}}, nil
}

// relationshipsOf yields rs as an import source.
func relationshipsOf(rs []graph.Relationship) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}
