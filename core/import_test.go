package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// TestImportRefuseExisting: a creating import stops at the first
// relationship already stored or given twice, keeping the batches
// committed before it; a plain import touches them.
func TestImportRefuseExisting(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		create    bool
		rels      []string
		committed int
		dup       string
	}{
		{"plain import touches", false, []string{"doc:a#viewer@user:x", "doc:z#viewer@user:stored"}, 2, ""},
		{"new relationships", true, []string{"doc:a#viewer@user:x", "doc:b#viewer@user:x", "doc:c#viewer@user:x"}, 3, ""},
		{"stored", true, []string{"doc:a#viewer@user:x", "doc:b#viewer@user:x", "doc:z#viewer@user:stored"}, 2, "doc:z#viewer@user:stored"},
		{"twice in a batch", true, []string{"doc:a#viewer@user:x", "doc:b#viewer@user:x", "doc:c#viewer@user:x", "doc:c#viewer@user:x"}, 2,
			"doc:c#viewer@user:x"},
		{"twice across batches", true, []string{"doc:a#viewer@user:x", "doc:b#viewer@user:x", "doc:a#viewer@user:x"}, 2, "doc:a#viewer@user:x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWriter(t, 10)
			if _, err := w.WriteRelationships(ctx, storage.WriteRequest{Mutations: touches("doc:z#viewer@user:stored")}, "updates"); err != nil {
				t.Fatal(err)
			}
			imp, err := w.NewImport(ctx, 2, storage.WriteMetadata{}, func(int, storage.Revision) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if c.create {
				imp.RefuseExisting()
			}
			for _, r := range c.rels {
				if err = imp.Add(ctx, graph.MustParseRelationship(r), Field("relationships")); err != nil {
					break
				}
			}
			if err == nil {
				err = imp.Finish(ctx)
			}
			var exists *storage.AlreadyExistsError
			switch {
			case c.dup == "" && err != nil:
				t.Fatal(err)
			case c.dup != "" && (!errors.As(err, &exists) || exists.Relationship.String() != c.dup):
				t.Fatalf("error %v, want %s already exists", err, c.dup)
			}
			if imp.Committed() != c.committed {
				t.Fatalf("%d committed, want %d", imp.Committed(), c.committed)
			}
		})
	}
}

// TestImportBuffer: the writer's imports together buffer at most
// MaxImportBuffer bytes. An import that would pass it fails with
// ErrImportBufferFull, naming the flag, and commits nothing; what an
// import held is given back when it commits a batch or is closed, so
// another can then buffer as much.
func TestImportBuffer(t *testing.T) {
	ctx := context.Background()
	r := graph.MustParseRelationship("doc:a#viewer@user:x")
	per := bufferedBytes(&r)
	w := newWriterWith(t, Limits{MaxWriteRelationships: 10, MaxImportBuffer: 3 * per})
	open := func(atomic bool) *Import {
		t.Helper()
		imp, err := w.NewImport(ctx, 2, storage.WriteMetadata{}, func(int, storage.Revision) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if atomic {
			imp.Atomic(100)
		}
		return imp
	}
	add := func(imp *Import, id string) error {
		return imp.Add(ctx, graph.MustParseRelationship("doc:"+id+"#viewer@user:x"), Field("relationships"))
	}
	// Two atomic imports buffer two relationships each: the fourth is
	// past the bound (the IDs are as long as "a").
	first, second := open(true), open(true)
	for _, id := range []string{"b", "c"} {
		if err := add(first, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := add(second, "d"); err != nil {
		t.Fatal(err)
	}
	err := add(second, "e")
	if !errors.Is(err, ErrImportBufferFull) || !strings.Contains(err.Error(), "--max-import-buffer") {
		t.Fatalf("fourth buffered relationship: %v, want ErrImportBufferFull naming --max-import-buffer", err)
	}
	second.Close()
	// The first commits: all that was held is free again.
	if err := first.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	third := open(false) // batches of 2: commits as it goes
	defer third.Close()
	for _, id := range []string{"f", "g", "h", "i", "j"} {
		if err := add(third, id); err != nil {
			t.Fatalf("after the others gave their buffers back: %v", err)
		}
	}
	if err := third.Finish(ctx); err != nil || third.Committed() != 5 {
		t.Fatalf("finish = %v, %d committed; want 5", err, third.Committed())
	}
	if !w.importBuffer.TryAcquire(3 * per) {
		t.Fatal("the buffer is not whole once every import is closed")
	}
}

// TestOnImported: the writer hears an import that committed
// relationships once, when it is closed, with its count and last
// revision, whether it finished or stopped; an import that committed
// nothing, or one closed twice, adds nothing.
func TestOnImported(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		rels   []string
		finish bool
		heard  string
	}{
		{"finished", []string{"doc:a#viewer@user:x", "doc:b#viewer@user:x", "doc:c#viewer@user:x"}, true, "[3]"},
		{"stopped after a batch", []string{"doc:a#viewer@user:x", "doc:b#viewer@user:x", "doc:c#viewer@user:x"}, false, "[2]"},
		{"nothing committed", []string{"doc:a#viewer@user:x"}, false, "[]"},
		{"empty stream", nil, true, "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWriter(t, 10)
			var heard []int
			var lastRev storage.Revision
			w.OnImported(func(committed int, last storage.Revision) {
				heard = append(heard, committed)
				lastRev = last
			})
			imp, err := w.NewImport(ctx, 2, storage.WriteMetadata{}, func(int, storage.Revision) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range c.rels {
				if err := imp.Add(ctx, graph.MustParseRelationship(r), Field("relationships")); err != nil {
					t.Fatal(err)
				}
			}
			if c.finish {
				if err := imp.Finish(ctx); err != nil {
					t.Fatal(err)
				}
			}
			imp.Close()
			imp.Close()
			if got := fmt.Sprint(heard); got != c.heard {
				t.Fatalf("heard %s, want %s", got, c.heard)
			}
			if len(heard) > 0 && lastRev != imp.Last() {
				t.Fatalf("heard revision %d, import's last %d", lastRev, imp.Last())
			}
		})
	}
}
