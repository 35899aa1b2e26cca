package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

func newWriter(t *testing.T, maxMutations int) *Writer {
	t.Helper()
	return newWriterWith(t, Limits{MaxWriteRelationships: maxMutations})
}

// newWriterWith is newWriter with limits.
func newWriterWith(t *testing.T, limits Limits) *Writer {
	t.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	revs := NewRevisions(engine, NewZookies("test"), time.Hour)
	w := NewWriter(engine, revs, NewSchemas(), limits)
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

// racingSchemas is a datastore shared with another server that commits a
// schema write just before each of this server's: every schema write of
// this server finds its base moved.
type racingSchemas struct {
	storage.Engine
	n int
}

func (r *racingSchemas) WriteSchema(ctx context.Context, w storage.SchemaWrite) (storage.Revision, error) {
	r.n++
	other := storage.SchemaWrite{Schema: storage.StoredSchema{Text: fmt.Sprintf("definition user {}\n// other server %d", r.n)}}
	if _, err := r.Engine.WriteSchema(ctx, other); err != nil {
		return 0, err
	}
	return r.Engine.WriteSchema(ctx, w)
}

// TestWriteSchemaOutrun: a schema write that other servers' schema writes
// keep beating gives up after maxSchemaRetries attempts with
// storage.ErrSchemaChanged (a retry, for the client), having written
// nothing of its own.
func TestWriteSchemaOutrun(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	racing := &racingSchemas{Engine: engine}
	w := NewWriter(racing, NewRevisions(racing, NewZookies("test"), time.Hour), NewSchemas(), Limits{MaxWriteRelationships: 10})
	text := "definition user {}\ndefinition doc {}"
	sch, err := schema.Compile("test", text)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = w.WriteSchema(ctx, text, sch, storage.WriteMetadata{})
	if !errors.Is(err, storage.ErrSchemaChanged) || !strings.Contains(err.Error(), "another schema write committed first") {
		t.Fatalf("outrun schema write: %v, want ErrSchemaChanged", err)
	}
	if racing.n != maxSchemaRetries {
		t.Errorf("%d attempts, want %d", racing.n, maxSchemaRetries)
	}
	head, err := engine.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.SnapshotReader(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := r.ReadSchema(ctx); err != nil || stored.Text == text {
		t.Fatalf("schema at the head: %q, %v; want the other server's", stored.Text, err)
	}
}
