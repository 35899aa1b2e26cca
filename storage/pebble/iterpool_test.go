package pebble

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// TestPooledIterators checks that reused iterators answer exactly what
// fresh ones would: a query at a revision newer than a pooled view opens a
// new view, older revisions still read as of themselves, history below
// the GC floor is refused even though an older view still holds it, idle
// views are closed once stale, and Close leaves none open (Pebble reports
// leaked iterators).
func TestPooledIterators(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(Options{Dir: dir, GCInterval: -1, GCWindow: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	write := func(op storage.Op, rel string) storage.Revision {
		t.Helper()
		rev, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: op, Relationship: graph.MustParseRelationship(rel)}}})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	rows := func(rd storage.Reader) (int, error) {
		n := 0
		for _, err := range rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{}) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	count := func(rev storage.Revision) (int, error) {
		rd, err := e.SnapshotReader(ctx, rev)
		if err != nil {
			return 0, err
		}
		return rows(rd)
	}
	idle := func() int {
		e.iters.mu.Lock()
		defer e.iters.mu.Unlock()
		return len(e.iters.idle)
	}

	r1 := write(storage.OpTouch, "document:d0#viewer@user:alice")
	if n, err := count(r1); n != 1 || err != nil {
		t.Fatalf("at %d: %d rows, %v; want 1", r1, n, err)
	}
	if idle() != 1 {
		t.Fatalf("%d idle iterators after a query, want 1", idle())
	}
	r2 := write(storage.OpTouch, "document:d1#viewer@user:alice")
	if n, err := count(r2); n != 2 || err != nil {
		t.Fatalf("at %d after a view of %d was pooled: %d rows, %v; want 2", r2, r1, n, err)
	}
	r3 := write(storage.OpDelete, "document:d0#viewer@user:alice")
	for _, c := range []struct {
		rev  storage.Revision
		want int
	}{{r1, 1}, {r2, 2}, {r3, 1}, {r1, 1}} {
		if n, err := count(c.rev); n != c.want || err != nil {
			t.Fatalf("at %d: %d rows, %v; want %d", c.rev, n, err, c.want)
		}
	}
	if n := idle(); n < 1 || n > iterPoolMax {
		t.Fatalf("%d idle iterators, want 1 to %d", n, iterPoolMax)
	}

	// A pooled view older than the GC pass still holds r1's versions; the
	// read is refused all the same, as a fresh view's would be.
	rd1, err := e.SnapshotReader(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rows(rd1); err != nil {
		t.Fatal(err)
	}
	if err := e.CollectGarbage(ctx, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if storage.Revision(e.floor.Load()) <= r1 {
		t.Fatalf("GC left the floor at %d", e.floor.Load())
	}
	if _, err := rows(rd1); !errors.Is(err, storage.ErrRevisionTooOld) {
		t.Fatalf("query below the floor: %v, want ErrRevisionTooOld", err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for idle() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle iterators never swept", idle())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := count(r3); err != nil {
		t.Fatal(err)
	}
	if idle() == 0 {
		t.Fatal("the query left no idle iterator to close")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("close with idle iterators: %v", err)
	}
}
