package check

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestPrefetchSkipsLargeObjects: once a prefetch finds an object with many
// relationships, later evaluations go straight to targeted queries for it,
// and the answers do not change.
func TestPrefetchSkipsLargeObjects(t *testing.T) {
	s, err := schema.Compile("large.zed", `
definition user {}
definition group {
	relation member: user | group#member
	relation manager: user
	permission access = member + manager
}`)
	if err != nil {
		t.Fatal(err)
	}
	store := newTestStore(t)
	var rels []graph.Relationship
	for i := range prefetchRows + 8 {
		rels = append(rels, graph.Relationship{
			Resource: graph.ObjectRef{Type: "group", ID: "big"}, Relation: "member",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%03d", i)}}})
	}
	rels = append(rels, graph.Relationship{
		Resource: graph.ObjectRef{Type: "group", ID: "small"}, Relation: "manager",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u000"}}})
	store.write(t, rels)
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	ctx := context.Background()
	big := graph.ObjectRef{Type: "group", ID: "big"}
	queries := func(user string, res graph.ObjectRef, want Permissionship) uint64 {
		t.Helper()
		before := e.Stats().Queries
		r, err := e.Check(ctx, snap, Request{Resource: res, Permission: "access",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: user}}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Permissionship != want {
			t.Fatalf("%s on %s: %v, want %v", user, res, r.Permissionship, want)
		}
		return e.Stats().Queries - before
	}
	first := queries("u039", big, HasPermission)
	if !e.large.Contains(big) {
		t.Fatalf("group:big (%d relationships) was not remembered as large", prefetchRows+8)
	}
	if second := queries("u001", big, HasPermission); second >= first {
		t.Errorf("second check of group:big issued %d queries, the first %d: want the prefetch skipped", second, first)
	}
	queries("nobody", big, NoPermission)
	small := graph.ObjectRef{Type: "group", ID: "small"}
	queries("u000", small, HasPermission)
	if e.large.Contains(small) {
		t.Errorf("group:small was remembered as large")
	}
}

// TestLookupSubjectsPrefetchesFewObjects: a set evaluation reads a few
// objects' rows whole, one query for a resource whose permission names
// four relations, and finds the same subjects as relation-by-relation
// reads.
func TestLookupSubjectsPrefetchesFewObjects(t *testing.T) {
	s, err := schema.Compile("doc.zed", `
definition user {}
definition doc {
	relation owner: user
	relation editor: user
	relation viewer: user
	relation banned: user
	permission view = (owner + editor + viewer) - banned
}`)
	if err != nil {
		t.Fatal(err)
	}
	store := newTestStore(t)
	r := func(rel, user string) graph.Relationship {
		return graph.Relationship{Resource: graph.ObjectRef{Type: "doc", ID: "d"}, Relation: rel,
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: user}}}
	}
	store.write(t, []graph.Relationship{r("owner", "ann"), r("editor", "bob"), r("viewer", "cat"), r("viewer", "dan"), r("banned", "dan")})
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	var got []string
	before := e.Stats().Queries
	err = e.LookupSubjects(context.Background(), snap, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: "doc", ID: "d"},
		Permission: "view", SubjectType: "user"}, func(r SubjectResult) bool {
		got = append(got, r.Subject.Object.ID)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != "[ann bob cat]" {
		t.Errorf("subjects %v, want [ann bob cat]", got)
	}
	if n := e.Stats().Queries - before; n != 1 {
		t.Errorf("%d storage queries, want 1 (doc:d's rows read whole)", n)
	}
}
