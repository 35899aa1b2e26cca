package sql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// TestQueriesOnManyIDsPageBySpan: forward queries on many resource IDs and
// reverse queries on many subject IDs, paged a few rows at a time (so each
// page asks for a span of the IDs, see pagedByID), return exactly the rows
// of a full scan, in order, from any cursor and up to any limit; objects
// with many rows, with none, IDs given twice and out of order included.
func TestQueriesOnManyIDsPageBySpan(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	// Object i holds rows(i) viewers: some none, a few many.
	rows := func(i int) int { return []int{0, 1, 3, 0, 17, 2, 1, 40}[i%8] }
	var all []graph.Relationship
	for i := range 60 {
		for j := range rows(i) {
			all = append(all, rel("doc", fmt.Sprintf("d%02d", i), "viewer", "user", fmt.Sprintf("u%02d", (i+j)%50)))
		}
	}
	all = append(all, rel("folder", "d01", "viewer", "user", "u01"), rel("doc", "d01", "editor", "user", "u02"))
	muts := make([]storage.Mutation, len(all))
	for i, x := range all {
		muts[i] = storage.Mutation{Op: storage.OpTouch, Relationship: x}
	}
	rev, err := e.Write(ctx, storage.WriteRequest{Mutations: muts})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	defer func(n int) { pageSize = n }(pageSize)
	pageSize = 7

	key := func(x graph.Relationship) string { return x.String() }
	collect := func(seq func(func(graph.Relationship, error) bool)) []string {
		var out []string
		for x, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, key(x))
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		var docs, users []string
		for range 1 + rng.IntN(70) {
			docs = append(docs, fmt.Sprintf("d%02d", rng.IntN(62)))
			users = append(users, fmt.Sprintf("u%02d", rng.IntN(52)))
		}
		fwd := storage.Filter{ResourceType: "doc", ResourceIDs: docs, Relation: "viewer"}
		rev := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: users}, ResourceType: "doc"}
		var wantFwd, wantRev []graph.Relationship
		for _, x := range all {
			if x.Resource.Type == "doc" && x.Relation == "viewer" && slices.Contains(docs, x.Resource.ID) {
				wantFwd = append(wantFwd, x)
			}
			if x.Resource.Type == "doc" && slices.Contains(users, x.Subject.Object.ID) {
				wantRev = append(wantRev, x)
			}
		}
		slices.SortFunc(wantFwd, func(a, b graph.Relationship) int { return compareKeys(forwardKey(a), forwardKey(b)) })
		slices.SortFunc(wantRev, func(a, b graph.Relationship) int { return compareKeys(reverseKey(a), reverseKey(b)) })
		for _, c := range []struct {
			name string
			want []graph.Relationship
			read func(storage.QueryOptions) []string
		}{
			{"forward", wantFwd, func(o storage.QueryOptions) []string { return collect(r.QueryRelationships(ctx, fwd, o)) }},
			{"reverse", wantRev, func(o storage.QueryOptions) []string { return collect(r.ReverseQueryRelationships(ctx, rev, o)) }},
		} {
			want := make([]string, len(c.want))
			for i, x := range c.want {
				want[i] = key(x)
			}
			if got := c.read(storage.QueryOptions{}); !slices.Equal(got, want) {
				t.Fatalf("round %d, %s, whole: got %d rows\n%s\nwant %d\n%s", round, c.name, len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
			}
			if len(c.want) == 0 {
				continue
			}
			from, limit := rng.IntN(len(c.want)), rng.IntN(len(c.want)+2)
			end := len(want)
			if limit > 0 {
				end = min(from+1+limit, len(want))
			}
			if got := c.read(storage.QueryOptions{After: &c.want[from], Limit: limit}); !slices.Equal(got, want[from+1:end]) {
				t.Fatalf("round %d, %s, after row %d, limit %d: got\n%s\nwant\n%s", round, c.name, from, limit, strings.Join(got, "\n"), strings.Join(want[from+1:end], "\n"))
			}
		}
	}
	// A cursor of another resource type: before every row, or after all.
	before, past := rel("a", "x", "viewer", "user", "u"), rel("zzz", "x", "viewer", "user", "u")
	f := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"d07", "d04"}, Relation: "viewer"}
	if got := collect(r.QueryRelationships(ctx, f, storage.QueryOptions{After: &before})); len(got) != rows(7)+rows(4) {
		t.Errorf("after a cursor of an earlier type: %d rows, want %d", len(got), rows(7)+rows(4))
	}
	if got := collect(r.QueryRelationships(ctx, f, storage.QueryOptions{After: &past})); len(got) != 0 {
		t.Errorf("after a cursor of a later type: %d rows, want none", len(got))
	}
}

func compareKeys(a, b [6]string) int { return slices.Compare(a[:], b[:]) }
