package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pembadb/pemba/storage"
)

// writeSchemaText stores a schema version and returns its revision.
func writeSchemaText(t *testing.T, e storage.Engine, text string) storage.Revision {
	t.Helper()
	rev, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: text}})
	if err != nil {
		t.Fatalf("write schema: %v", err)
	}
	return rev
}

// holdWriteSection starts a write of schema text whose Check holds the
// write critical section until the returned finish is called; finish
// waits for the schema write and fails t if it failed.
func holdWriteSection(t *testing.T, e storage.Engine, text string) (finish func()) {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := e.WriteSchema(ctx, storage.SchemaWrite{
			Schema: storage.StoredSchema{Text: text},
			Check: func(context.Context, storage.Reader) error {
				close(entered)
				<-release
				return nil
			},
		})
		done <- err
	}()
	<-entered
	return func() {
		t.Helper()
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("schema write: %v", err)
		}
	}
}

// testSchemaGuard: a write or import batch guarded by a schema revision
// commits only while that schema is the newest, and writes nothing
// otherwise.
func testSchemaGuard(t *testing.T, e storage.Engine) {
	s1 := writeSchemaText(t, e, "definition user {}")
	a, b := "document:1#viewer@user:a", "document:2#viewer@user:b"
	guarded := func(rev storage.Revision, spec string) error {
		_, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch, R(spec)), SchemaRevision: rev})
		return err
	}
	if err := guarded(s1, a); err != nil {
		t.Fatalf("write guarded by the newest schema: %v", err)
	}
	s2 := writeSchemaText(t, e, "definition user {}\ndefinition document {}")
	before := head(t, e)
	if err := guarded(s1, b); !errors.Is(err, storage.ErrSchemaChanged) {
		t.Fatalf("write guarded by a superseded schema: err = %v, want ErrSchemaChanged", err)
	}
	res, err := e.Import(ctx, seqOf(rels(b)), storage.ImportOptions{SchemaRevision: s1})
	if !errors.Is(err, storage.ErrSchemaChanged) || res.Imported != 0 {
		t.Fatalf("import guarded by a superseded schema: %+v, %v; want 0 imported and ErrSchemaChanged", res, err)
	}
	if h := head(t, e); h != before {
		t.Fatalf("refused writes moved the head from %d to %d", before, h)
	}
	equalStrings(t, "after refused writes", allAtHead(t, e), []string{a})
	if err := guarded(s2, b); err != nil {
		t.Fatalf("write guarded by the newest schema: %v", err)
	}
	if _, err := e.Import(ctx, seqOf(rels("document:3#viewer@user:c")), storage.ImportOptions{SchemaRevision: s2}); err != nil {
		t.Fatalf("import guarded by the newest schema: %v", err)
	}
	equalStrings(t, "after guarded writes", allAtHead(t, e), []string{a, b, "document:3#viewer@user:c"})
}

// testSchemaCheck: a schema write's Check sees everything committed
// before it, an error from it writes nothing, and no write commits while
// it runs.
func testSchemaCheck(t *testing.T, e storage.Engine) {
	a := "document:1#viewer@user:a"
	last := touch(t, e, a)
	var seen []string
	var readAt storage.Revision
	refused := errors.New("refused by check")
	_, err := e.WriteSchema(ctx, storage.SchemaWrite{
		Schema: storage.StoredSchema{Text: "definition user {}"},
		Check: func(ctx context.Context, head storage.Reader) error {
			readAt = head.Revision()
			for r, err := range head.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}) {
				if err != nil {
					return err
				}
				seen = append(seen, r.String())
			}
			return refused
		},
	})
	if !errors.Is(err, refused) {
		t.Fatalf("schema write whose check fails: err = %v, want the check's error", err)
	}
	if readAt != last {
		t.Fatalf("check read at revision %d, want the head %d", readAt, last)
	}
	equalStrings(t, "relationships the check saw", seen, []string{a})
	if h := head(t, e); h != last {
		t.Fatalf("a refused schema write moved the head from %d to %d", last, h)
	}
	if s, err := reader(t, e, last).ReadSchema(ctx); err != nil || s.Text != "" {
		t.Fatalf("schema after a refused write = %q, %v; want none", s.Text, err)
	}

	// A write started while a check runs waits for the schema write, and
	// its guard (the schema before it) then fails.
	s1 := writeSchemaText(t, e, "definition user {}")
	finish := holdWriteSection(t, e, "definition user {}\ndefinition document {}")
	writeDone := make(chan error, 1)
	go func() {
		_, err := e.Write(ctx, storage.WriteRequest{
			Mutations: mutations(storage.OpTouch, R("document:2#viewer@user:b")), SchemaRevision: s1})
		writeDone <- err
	}()
	finish()
	if err := <-writeDone; !errors.Is(err, storage.ErrSchemaChanged) {
		t.Fatalf("write racing a schema write: err = %v, want ErrSchemaChanged", err)
	}
	equalStrings(t, "after the race", allAtHead(t, e), []string{a})
}

// testWaitHonoursContext: a write waiting for the write critical section
// gives up when its context ends and is never applied later.
func testWaitHonoursContext(t *testing.T, e storage.Engine) {
	finish := holdWriteSection(t, e, "definition user {}")
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := e.Write(wctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch, R("document:1#viewer@user:a"))})
	cancel()
	finish()
	if err == nil {
		t.Fatal("a write waiting past its deadline succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write waiting past its deadline: err = %v, want context.DeadlineExceeded", err)
	}
	// Whatever commits next must not be the abandoned write.
	touch(t, e, "document:2#viewer@user:b")
	equalStrings(t, "after the abandoned write", allAtHead(t, e), []string{"document:2#viewer@user:b"})
}

// testClose: a closed engine refuses every call with ErrClosed, and
// closing again does nothing.
func testClose(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:a")
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := e.HeadRevision(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("head revision after close: %v, want ErrClosed", err)
	}
	if _, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch, R("document:2#viewer@user:b"))}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("write after close: %v, want ErrClosed", err)
	}
	if _, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("schema write after close: %v, want ErrClosed", err)
	}
}
