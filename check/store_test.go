package check

import (
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// testStore is the datastore of tests. TEMPORARY: backed by sliceReader
// until the in-memory Pebble engine is committed.
type testStore struct {
	rels []graph.Relationship
	rev  storage.Revision
}

func newTestStore(t *testing.T) *testStore { return &testStore{} }

func (s *testStore) write(t *testing.T, rels []graph.Relationship) {
	t.Helper()
	s.rels = append(s.rels, rels...)
	s.rev++
}

func (s *testStore) reader(t *testing.T) storage.Reader {
	return &sliceReader{rev: s.rev, rels: s.rels}
}

func (s *testStore) exists(r graph.Relationship, now time.Time) bool {
	for _, x := range s.rels {
		if x.Key() == r.Key() && live(x, now) {
			return true
		}
	}
	return false
}
