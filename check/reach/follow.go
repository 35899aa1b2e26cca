package reach

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Source is what Follow reads: a datastore's head, snapshots and change
// stream (storage.Engine has these methods).
type Source interface {
	HeadRevision(ctx context.Context) (storage.Revision, error)
	SnapshotReader(ctx context.Context, rev storage.Revision) (storage.Reader, error)
	Watch(ctx context.Context, after storage.Revision) iter.Seq2[storage.Change, error]
}

// Compile turns a stored schema into its compiled form.
type Compile func(storage.StoredSchema) (*schema.Schema, error)

// Follow waits retryFirst before rebuilding after a failure, doubling the
// wait up to retryMax while failures repeat (a stream that fails right
// after each build must not rebuild every second); a stream that ran
// longer than retryMax resets it.
const (
	retryFirst = time.Second
	retryMax   = time.Minute
	// retryTooLarge is the wait after the index outgrew its memory limit:
	// a build reads up to the limit before it finds out, so it is not
	// retried often.
	retryTooLarge = 10 * time.Minute
)

// Follow builds the index at src's head and keeps it current from the
// change stream until ctx ends. A change that writes a schema, or a
// stream that fails (behind the datastore's GC window, say), starts a new
// build at the head; meanwhile the old content answers for the revisions
// it holds. Failures are passed to report (which may be nil) and retried;
// an index that outgrew Options.MaxBytes is retried after ten minutes.
func (ix *Index) Follow(ctx context.Context, src Source, compile Compile, report func(error)) {
	wait := retryFirst
	for ctx.Err() == nil {
		start := time.Now()
		err := ix.follow(ctx, src, compile)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > retryMax {
			wait = retryFirst
		}
		if err == nil || errors.Is(err, ErrSchemaChanged) {
			continue
		}
		if report != nil {
			report(err)
		}
		pause := wait
		if errors.Is(err, ErrTooLarge) {
			pause = retryTooLarge
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		wait = min(2*wait, retryMax)
	}
}

// follow builds once and applies the change stream until it ends, fails
// or carries a schema.
func (ix *Index) follow(ctx context.Context, src Source, compile Compile) error {
	rev, err := src.HeadRevision(ctx)
	if err != nil {
		return fmt.Errorf("reach index: head revision: %w", err)
	}
	r, err := src.SnapshotReader(ctx, rev)
	if err != nil {
		return fmt.Errorf("reach index: read at %d: %w", rev, err)
	}
	stored, err := r.ReadSchema(ctx)
	if err != nil {
		return fmt.Errorf("reach index: read schema at %d: %w", rev, err)
	}
	var s *schema.Schema
	if stored.Text != "" {
		if s, err = compile(stored); err != nil {
			return fmt.Errorf("reach index: schema at %d: %w", rev, err)
		}
	}
	if err := ix.Build(ctx, s, r); err != nil {
		return err
	}
	for ch, err := range src.Watch(ctx, rev) {
		if err != nil {
			return fmt.Errorf("reach index: watch after %d: %w", rev, err)
		}
		if err := ix.Apply(ch); err != nil {
			return err
		}
	}
	return nil
}
