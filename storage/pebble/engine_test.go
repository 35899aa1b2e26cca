package pebble

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/storagetest"
)

func openTest(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.GCInterval == 0 {
		opts.GCInterval = -1 // tests collect garbage explicitly
	}
	e, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

func TestConformanceOnDisk(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		return openTest(t, Options{Dir: t.TempDir()})
	}, storagetest.WithTamper(tamper))
}

func TestConformanceInMemory(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		return openTest(t, Options{InMemory: true})
	}, storagetest.WithTamper(tamper))
}

// TestConformanceUnindexedAudit runs the audit subtests with the audit
// indexer stopped: term queries answer from the entries alone until the
// suite calls IndexAudit.
func TestConformanceUnindexedAudit(t *testing.T) {
	storagetest.RunAudit(t, func(t *testing.T) storage.Engine {
		return openTest(t, Options{InMemory: true, noAuditIndexer: true})
	}, storagetest.WithTamper(tamper))
}

// tamper rewrites a stored audit entry in Pebble, behind the engine's back.
func tamper(t *testing.T, e storage.Engine, rev storage.Revision, edit func([]byte) []byte) {
	t.Helper()
	if err := e.(*Engine).RewriteAuditEntry(rev, edit); err != nil {
		t.Fatal(err)
	}
}

// TestReopen checks that acknowledged writes, schema versions, history and
// the GC floor survive closing and reopening the data directory.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpTouch, Relationship: graph.MustParseRelationship("document:one#viewer@user:alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CollectGarbage(ctx, time.Now().Add(10*365*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	r2, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}", Compiled: []byte{1}}, Metadata: storage.WriteMetadata{Actor: "me"}})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(`document:two#viewer@user:bob[cav:{"a":[1,2]}]`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openTest(t, Options{Dir: dir})
	if h, _ := e.HeadRevision(ctx); h != r3 {
		t.Fatalf("head after reopen = %d, want %d", h, r3)
	}
	if _, err := e.SnapshotReader(ctx, r1-1); !errors.Is(err, storage.ErrRevisionTooOld) {
		t.Fatalf("reader below the persisted floor: %v", err)
	}
	rd, err := e.SnapshotReader(ctx, r2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for r, err := range rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.String())
	}
	if strings.Join(got, " ") != "document:one#viewer@user:alice" {
		t.Fatalf("at %d after reopen: %q", r2, got)
	}
	s, err := rd.ReadSchema(ctx)
	if err != nil || s.Text != "definition user {}" || s.Revision != r2 {
		t.Fatalf("schema after reopen = %+v, %v", s, err)
	}
	r4, err := e.Write(ctx, storage.WriteRequest{})
	if err != nil || r4 != r3+1 {
		t.Fatalf("first write after reopen = %d, %v; want %d", r4, err, r3+1)
	}
	var changes []storage.Change
	wctx, cancel := context.WithCancel(ctx)
	for ch, err := range e.Watch(wctx, r1) {
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, ch)
		if ch.Revision == r4 {
			cancel()
		}
	}
	cancel()
	if len(changes) != 3 || changes[0].Metadata.Actor != "me" || !changes[0].SchemaChanged ||
		changes[1].Relationships[0].Relationship.String() != `document:two#viewer@user:bob[cav:{"a":[1,2]}]` {
		t.Fatalf("watch after reopen: %+v", changes)
	}
}

// TestClose checks that a closed engine refuses work and wakes watchers.
func TestClose(t *testing.T) {
	ctx := context.Background()
	e, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	watchErr := make(chan error, 1)
	go func() {
		for _, err := range e.Watch(ctx, 0) {
			if err != nil {
				watchErr <- err
				return
			}
		}
		watchErr <- nil
	}()
	rd, err := e.SnapshotReader(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := <-watchErr; !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("watch after close: %v", err)
	}
	if _, err := e.HeadRevision(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("head after close: %v", err)
	}
	if _, err := e.Write(ctx, storage.WriteRequest{}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	for _, err := range rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}) {
		if !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("query after close: %v", err)
		}
	}
}

// TestBackgroundGC checks that the collector the engine runs raises the
// floor once revisions leave the window.
func TestBackgroundGC(t *testing.T) {
	ctx := context.Background()
	e := openTest(t, Options{InMemory: true, GCWindow: time.Millisecond, GCInterval: 5 * time.Millisecond})
	var last storage.Revision
	for i := range 3 {
		rev, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch,
			Relationship: graph.MustParseRelationship(fmt.Sprintf("document:d%d#viewer@user:alice", i))}}})
		if err != nil {
			t.Fatal(err)
		}
		last = rev
	}
	deadline := time.Now().Add(20 * time.Second)
	for storage.Revision(e.floor.Load()) < last {
		if time.Now().After(deadline) {
			t.Fatalf("floor %d never reached the head %d", e.floor.Load(), last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e.SnapshotReader(ctx, 1); !errors.Is(err, storage.ErrRevisionTooOld) {
		t.Fatalf("reader at 1: %v", err)
	}
	if _, err := e.SnapshotReader(ctx, last); err != nil {
		t.Fatalf("the head must stay readable: %v", err)
	}
}

// TestComponentOrder checks that the key encoding orders tuples of strings
// exactly like the strings, escaped zero bytes included, and round-trips.
func TestComponentOrder(t *testing.T) {
	vals := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "\x01", "a", "a\x00", "a\x00b", "a\x01", "ab", "b", "\xff", "\xff\x00"}
	enc := func(a, b string) []byte { return appendComponent(appendComponent(nil, a), b) }
	for _, a1 := range vals {
		for _, a2 := range vals {
			for _, b1 := range vals {
				for _, b2 := range vals {
					want := cmp.Or(cmp.Compare(a1, b1), cmp.Compare(a2, b2))
					if got := bytes.Compare(enc(a1, a2), enc(b1, b2)); got != want {
						t.Fatalf("(%q,%q) vs (%q,%q): encoded order %d, want %d", a1, a2, b1, b2, got, want)
					}
				}
			}
		}
		c, rest, err := nextComponent(appendComponent(nil, a1))
		if err != nil || string(c) != a1 || len(rest) != 0 {
			t.Fatalf("round trip of %q: %q %q %v", a1, c, rest, err)
		}
	}
}

// TestQueryCancelled checks that a query with a finished context fails
// instead of reading.
func TestQueryCancelled(t *testing.T) {
	e := openTest(t, Options{InMemory: true})
	c, cancel := context.WithCancel(context.Background())
	cancel()
	rd, err := e.SnapshotReader(c, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range rd.QueryRelationships(c, storage.Filter{}, storage.QueryOptions{}) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("query with a cancelled context: %v", err)
		}
		return
	}
	t.Fatal("query with a cancelled context yielded nothing")
}

// TestStoreStats: a reopened store reports its table files and counts the
// block reads of a query; a closed one reports nothing.
func TestStoreStats(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	e, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var muts []storage.Mutation
	for i := range 2000 {
		muts = append(muts, storage.Mutation{Op: storage.OpTouch,
			Relationship: graph.MustParseRelationship(fmt.Sprintf("document:d%04d#viewer@user:u%04d", i, i))})
	}
	if _, err := e.Write(ctx, storage.WriteRequest{Mutations: muts}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, Options{Dir: dir}) // recovery writes the log to a table
	before := e.StoreStats()
	var tables, bytes int64
	for i := range before.LevelTables {
		tables, bytes = tables+before.LevelTables[i], bytes+before.LevelBytes[i]
	}
	if tables == 0 || bytes == 0 || before.ReadAmplification == 0 {
		t.Fatalf("reopened store reports %d tables, %d bytes, read amplification %d", tables, bytes, before.ReadAmplification)
	}
	rd, err := e.SnapshotReader(ctx, mustHead(t, e))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	after := e.StoreStats()
	if n != 2000 || after.BlockCacheHits+after.BlockCacheMisses <= before.BlockCacheHits+before.BlockCacheMisses || after.BlockCacheBytes == 0 {
		t.Fatalf("read %d rows; block cache before %+v, after %+v", n, before, after)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if st := e.StoreStats(); st.LevelTables != nil || st.BlockCacheHits != 0 {
		t.Fatalf("closed store reports %+v", st)
	}
}

func mustHead(t *testing.T, e *Engine) storage.Revision {
	t.Helper()
	h, err := e.HeadRevision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
