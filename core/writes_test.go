package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

func newWriter(t *testing.T, maxMutations int) *Writer {
	t.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	revs := NewRevisions(engine, NewZookies("test"), time.Hour)
	w := NewWriter(engine, revs, NewSchemas(), maxMutations)
	text := "definition user {}\ndefinition doc {\n relation viewer: user\n}"
	sch, err := schema.Compile("test", text)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteSchema(context.Background(), text, sch, storage.WriteMetadata{}); err != nil {
		t.Fatal(err)
	}
	return w
}

func touches(specs ...string) []storage.Mutation {
	var out []storage.Mutation
	for _, s := range specs {
		out = append(out, storage.Mutation{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(s)})
	}
	return out
}

// TestWriteRelationshipsRefusals: every refusal names the field, in the
// domain's words, and writes nothing.
func TestWriteRelationshipsRefusals(t *testing.T) {
	w := newWriter(t, 2)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		muts []storage.Mutation
		want string
	}{
		{"empty", nil, "updates: empty: a write needs at least one update"},
		{"over the limit", touches("doc:a#viewer@user:u", "doc:b#viewer@user:u", "doc:c#viewer@user:u"),
			"updates: 3 updates exceed the limit of 2 per write; use ImportRelationships (pemba import) for bulk loads"},
		{"twice", touches("doc:a#viewer@user:u", "doc:a#viewer@user:u"),
			"updates[1].relationship: doc:a#viewer@user:u also appears in updates[0]; a relationship may be updated once per write"},
		{"not in the schema", touches("doc:a#editor@user:u"),
			`updates[0].relationship.relation: definition "doc" has no relation "editor"`},
	} {
		_, err := w.WriteRelationships(ctx, storage.WriteRequest{Mutations: c.muts}, "updates")
		if !errors.Is(err, ErrInvalidInput) || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := w.WriteRelationships(ctx, storage.WriteRequest{Mutations: touches("doc:a#viewer@user:u")}, "updates"); err != nil {
		t.Fatalf("a valid write: %v", err)
	}
}
