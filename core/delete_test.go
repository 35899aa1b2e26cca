package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pembadb/pemba/storage"
)

// TestDelete: limits, all-or-nothing and preconditions, each refusal
// deleting nothing.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	docs := storage.Filter{ResourceType: "doc"}
	docsPrefix := func(p string) storage.Filter { return storage.Filter{ResourceType: "doc", ResourceIDPrefix: p} }
	ann := storage.Filter{ResourceType: "doc", Subject: &storage.SubjectFilter{Type: "user", IDs: []string{"ann"}}}
	for _, c := range []struct {
		name    string
		req     DeleteRequest
		deleted int
		more    bool
		err     error
		msg     string
	}{
		{"all", DeleteRequest{Filter: docs}, 3, false, nil, ""},
		{"partial", DeleteRequest{Filter: docs, Limit: 2}, 2, true, nil, ""},
		{"limit not reached", DeleteRequest{Filter: docs, Limit: 3, AllOrNothing: true}, 3, false, nil, ""},
		{"all or nothing", DeleteRequest{Filter: docs, Limit: 2, AllOrNothing: true}, 0, false, ErrDeleteLimit,
			"filter: found more than 2 relationships to delete and partial deletion was not requested"},
		{"precondition holds", DeleteRequest{Filter: docs, Preconditions: []storage.Precondition{{MustMatch: true, Filter: ann}}}, 3, false, nil, ""},
		{"precondition fails", DeleteRequest{Filter: docs, Preconditions: []storage.Precondition{{MustMatch: false, Filter: ann}}}, 0, false,
			storage.ErrPreconditionFailed, ""},
		{"guarded partial", DeleteRequest{Filter: docs, Limit: 1, Preconditions: []storage.Precondition{{MustMatch: true, Filter: ann}}}, 1, true, nil, ""},
		{"guarded all or nothing", DeleteRequest{Filter: docs, Limit: 1, AllOrNothing: true,
			Preconditions: []storage.Precondition{{MustMatch: true, Filter: ann}}}, 0, false, ErrDeleteLimit, ""},
		{"guarded above the write limit", DeleteRequest{Filter: docs, Preconditions: []storage.Precondition{{MustMatch: true, Filter: ann}}}, 0, false,
			ErrInvalidInput, "filter: more than 2 relationships match"},
		{"guarded, nothing matches", DeleteRequest{Filter: storage.Filter{ResourceType: "user"},
			Preconditions: []storage.Precondition{{MustMatch: true, Filter: ann}}}, 0, false, nil, ""},
		{"empty filter", DeleteRequest{}, 0, false, ErrInvalidInput, "filter: give at least resource_type or subject"},
		{"ID prefix", DeleteRequest{Filter: docsPrefix("a")}, 2, false, nil, ""},
		{"ID prefix, partial", DeleteRequest{Filter: docsPrefix("a"), Limit: 1}, 1, true, nil, ""},
		{"ID prefix, all or nothing", DeleteRequest{Filter: docsPrefix("a"), Limit: 1, AllOrNothing: true}, 0, false, ErrDeleteLimit, ""},
		{"ID prefix, guarded", DeleteRequest{Filter: docsPrefix("b"), Preconditions: []storage.Precondition{{MustMatch: true, Filter: ann}}}, 1, false, nil, ""},
		{"ID prefix without a type", DeleteRequest{Filter: storage.Filter{Subject: ann.Subject, ResourceIDPrefix: "a"}}, 0, false, ErrInvalidInput,
			"filter: invalid argument: filter resource id prefix: requires a resource type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			maxMutations := 10
			if c.name == "guarded above the write limit" {
				maxMutations = 2
			}
			w := newWriter(t, maxMutations)
			for _, r := range []string{"doc:a1#viewer@user:ann", "doc:a2#viewer@user:bob", "doc:b1#viewer@user:cat"} {
				if _, err := w.WriteRelationships(ctx, storage.WriteRequest{Mutations: touches(r)}, "updates"); err != nil {
					t.Fatal(err)
				}
			}
			res, err := w.Delete(ctx, c.req, Field("filter"))
			if c.err != nil {
				if !errors.Is(err, c.err) || !strings.HasPrefix(fmt.Sprint(err), c.msg) {
					t.Fatalf("error %v, want %v %q", err, c.err, c.msg)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if res.Deleted != c.deleted || res.More != c.more {
				t.Fatalf("deleted %d (more %v), want %d (more %v)", res.Deleted, res.More, c.deleted, c.more)
			}
			reader, _, err := w.HeadSchema(ctx)
			if err != nil {
				t.Fatal(err)
			}
			left, err := readMatches(ctx, reader, docs, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 3-c.deleted {
				t.Fatalf("%d relationships left, want %d", len(left), 3-c.deleted)
			}
		})
	}
}
