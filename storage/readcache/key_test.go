package readcache

import (
	"testing"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/relchanges"
)

// TestObjectKeyIsForwardKey: QueryObjects looks an object up by
// appendObjectKey, which must be the key forwardKey gives the object's own
// query (with or without the revision in it), or the two would not share
// cache entries.
func TestObjectKeyIsForwardKey(t *testing.T) {
	for _, changes := range []bool{false, true} {
		c := New(Config{})
		if changes {
			c.changes = neverUnchanged{}
		}
		r := &reader{c: c, next: revisionOnly{rev: 42}}
		for _, tc := range []struct {
			typ, id, rel string
			limit        int
		}{
			{"folder", "f1", "", 32},
			{"folder", "f1", "viewer", 0},
			{"document", "a/b:c", "parent", 7},
		} {
			f := storage.Filter{ResourceType: tc.typ, ResourceIDs: []string{tc.id}, Relation: tc.rel}
			want := r.forwardKey(f, tc.limit).key
			if got := string(r.appendObjectKey(nil, &f, tc.limit)); got != want {
				t.Errorf("changes %v, %+v: object key %q, forward key %q", changes, tc, got, want)
			}
		}
	}
}

// revisionOnly is a reader that only knows its revision.
type revisionOnly struct {
	storage.Reader
	rev storage.Revision
}

func (r revisionOnly) Revision() storage.Revision { return r.rev }

type neverUnchanged struct{}

func (neverUnchanged) UnchangedIn(_, _ storage.Revision, _ relchanges.Scope) bool { return false }
