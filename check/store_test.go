package check

import (
	"context"
	"iter"
	"time"

	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// testStore is the datastore of tests and benchmarks: the real Pebble
// engine in memory.
type testStore struct {
	eng *pebble.Engine
}

func newTestStore(t testing.TB) *testStore {
	t.Helper()
	s := openTestStore(t)
	t.Cleanup(func() { s.eng.Close() })
	return s
}

// openTestStore opens a store that lives as long as the process (for the
// benchmark graphs shared by sub-benchmarks).
func openTestStore(t testing.TB) *testStore {
	t.Helper()
	eng, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &testStore{eng: eng}
}

func (s *testStore) write(t testing.TB, rels []graph.Relationship) {
	t.Helper()
	seq := func(yield func(graph.Relationship, error) bool) {
		for _, r := range rels {
			if !yield(r, nil) {
				return
			}
		}
	}
	if _, err := s.eng.Import(context.Background(), iter.Seq2[graph.Relationship, error](seq), storage.ImportOptions{BatchSize: 10000, Metadata: storage.WriteMetadata{}}); err != nil {
		t.Fatal(err)
	}
}

func (s *testStore) reader(t testing.TB) storage.Reader {
	t.Helper()
	ctx := context.Background()
	rev, err := s.eng.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.eng.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exists reports whether r is stored and unexpired at now, at the head.
func (s *testStore) exists(r graph.Relationship, now time.Time) bool {
	ctx := context.Background()
	rev, err := s.eng.HeadRevision(ctx)
	if err != nil {
		return false
	}
	rd, err := s.eng.SnapshotReader(ctx, rev)
	if err != nil {
		return false
	}
	srel := r.Subject.Relation
	f := storage.Filter{ResourceType: r.Resource.Type, ResourceIDs: []string{r.Resource.ID}, Relation: r.Relation,
		Subject: &storage.SubjectFilter{Type: r.Subject.Object.Type, IDs: []string{r.Subject.Object.ID}, Relation: &srel}}
	for x, err := range rd.QueryRelationships(ctx, f, storage.QueryOptions{Now: now}) {
		if err == nil && x.Key() == r.Key() {
			return true
		}
	}
	return false
}

// storeOf writes the relationships, given as text, to a new test store
// and returns the snapshot of s over it.
func storeOf(t testing.TB, s *schema.Schema, rels ...string) Snapshot {
	t.Helper()
	parsed := make([]graph.Relationship, len(rels))
	for i, r := range rels {
		rel, err := graph.ParseRelationship(r)
		if err != nil {
			t.Fatal(err)
		}
		parsed[i] = rel
	}
	store := newTestStore(t)
	store.write(t, parsed)
	return Snapshot{Schema: s, Reader: store.reader(t)}
}
