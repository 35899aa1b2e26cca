package core

import (
	"context"
	"errors"
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
