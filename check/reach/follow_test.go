package reach

import (
	"context"
	"errors"
	"iter"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// failingWatch is a datastore whose first change stream fails, as one
// that fell behind the GC window does.
type failingWatch struct {
	storage.Engine
	failed atomic.Bool
}

func (f *failingWatch) Watch(ctx context.Context, after storage.Revision) iter.Seq2[storage.Change, error] {
	if f.failed.CompareAndSwap(false, true) {
		return func(yield func(storage.Change, error) bool) {
			yield(storage.Change{}, storage.ErrRevisionTooOld)
		}
	}
	return f.Engine.Watch(ctx, after)
}

// TestFollowRebuildsAfterStreamFailure: a failed change stream is
// reported and the index rebuilt, then kept current again.
func TestFollowRebuildsAfterStreamFailure(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.eng.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: groupSchema}}); err != nil {
		t.Fatal(err)
	}
	f.write(storage.OpTouch, member("a", "user:alice"))
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var reported atomic.Value
	go func() {
		defer close(done)
		f.ix.Follow(fctx, &failingWatch{Engine: f.eng}, func(st storage.StoredSchema) (*schema.Schema, error) {
			return schema.Compile("groups.zed", st.Text)
		}, func(err error) { reported.Store(err) })
	}()
	defer func() { cancel(); <-done }()
	waitFor := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s: %+v", what, f.ix.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("a rebuild after the failure", func() bool { return f.ix.Stats().Builds >= 2 })
	if err, _ := reported.Load().(error); !errors.Is(err, storage.ErrRevisionTooOld) {
		t.Errorf("reported %v, want the stream's ErrRevisionTooOld", err)
	}
	// The new stream applies later writes.
	rev := f.write(storage.OpTouch, member("b", "group:a#member"))
	waitFor("applying the next write", func() bool { got, ok := f.ix.Revision(); return ok && got >= rev })
	if got := f.holds(rev, time.Now(), "alice", "b"); got != "level 2" {
		t.Errorf("alice in b after the rebuild: %s, want level 2", got)
	}
}
