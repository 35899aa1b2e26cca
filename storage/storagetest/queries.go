package storagetest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// fixture is the data set the query subtests compare against a brute-force
// evaluation.
var fixture = []string{
	"document:1#viewer@user:alice",
	"document:1#viewer@user:bob",
	"document:1#editor@user:alice",
	"document:1#viewer@group:eng#member",
	"document:1#viewer@group:eng",
	"document:10#viewer@user:alice",
	"document:2#viewer@user:*",
	"document:2#owner@user:carol",
	"document:2#parent@folder:a",
	"folder:a#viewer@user:alice",
	"folder:a#viewer@group:eng#member",
	"folder:b#owner@user:bob",
	"group:eng#member@user:alice",
	"group:eng#member@group:admins#member",
	"org/team:x#member@user:alice",
}

func loadFixture(t *testing.T, e storage.Engine) (storage.Reader, []graph.Relationship) {
	t.Helper()
	rs := rels(fixture...)
	write(t, e, storage.OpCreate, rs[:7]...)
	write(t, e, storage.OpCreate, rs[7:]...)
	return reader(t, e, head(t, e)), rs
}

func matchSubject(s *storage.SubjectFilter, r graph.Relationship) bool {
	if s == nil {
		return true
	}
	return r.Subject.Object.Type == s.Type &&
		(len(s.IDs) == 0 || slices.Contains(s.IDs, r.Subject.Object.ID)) &&
		(s.Relation == nil || *s.Relation == r.Subject.Relation)
}

func matchForward(f storage.Filter, r graph.Relationship) bool {
	return (f.ResourceType == "" || f.ResourceType == r.Resource.Type) &&
		(len(f.ResourceIDs) == 0 || slices.Contains(f.ResourceIDs, r.Resource.ID)) &&
		strings.HasPrefix(r.Resource.ID, f.ResourceIDPrefix) &&
		(f.Relation == "" || f.Relation == r.Relation) &&
		matchSubject(f.Subject, r)
}

func matchReverse(f storage.ReverseFilter, r graph.Relationship) bool {
	return matchSubject(&f.Subject, r) &&
		(f.ResourceType == "" || f.ResourceType == r.Resource.Type) &&
		(f.Relation == "" || f.Relation == r.Relation)
}

func expect(rs []graph.Relationship, match func(graph.Relationship) bool, order func(a, b graph.Relationship) int) []string {
	var out []graph.Relationship
	for _, r := range rs {
		if match(r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, order)
	return formatAll(out)
}

func describe(v any) string { return strings.ReplaceAll(fmt.Sprintf("%+v", v), "\n", " ") }

func subjectFilters() []*storage.SubjectFilter {
	return []*storage.SubjectFilter{
		nil,
		{Type: "user"},
		{Type: "user", IDs: []string{"alice"}},
		{Type: "user", IDs: []string{"*"}},
		{Type: "user", IDs: []string{"bob", "alice", "nobody"}},
		{Type: "group", Relation: ptr("member")},
		{Type: "group", Relation: ptr("")},
		{Type: "group", IDs: []string{"eng"}, Relation: ptr("member")},
		{Type: "missing"},
	}
}

func testForwardQueries(t *testing.T, e storage.Engine) {
	rd, rs := loadFixture(t, e)
	types := []string{"", "document", "folder", "org/team", "missing"}
	ids := [][]string{nil, {"1"}, {"10", "1"}, {"2", "a", "b"}, {"nope"}}
	relations := []string{"", "viewer", "owner", "nope"}
	n := 0
	for _, typ := range types {
		for _, idl := range ids {
			if typ == "" && idl != nil {
				continue // invalid; BadFilters covers it
			}
			for _, rel := range relations {
				for _, sf := range subjectFilters() {
					f := storage.Filter{ResourceType: typ, ResourceIDs: idl, Relation: rel, Subject: sf}
					want := expect(rs, func(r graph.Relationship) bool { return matchForward(f, r) }, compareForward)
					got := formatAll(collect(t, rd.QueryRelationships(ctx, f, storage.QueryOptions{})))
					equalStrings(t, "forward query "+describe(f)+" "+describe(sf), got, want)
					n++
				}
			}
		}
	}
	// ID prefixes: "1" holds 1 and 10, "10" only 10; "a" a folder, "x" nothing.
	for _, typ := range types[1:] {
		for _, prefix := range []string{"1", "10", "a", "x"} {
			for _, rel := range relations {
				for _, sf := range subjectFilters() {
					f := storage.Filter{ResourceType: typ, ResourceIDPrefix: prefix, Relation: rel, Subject: sf}
					want := expect(rs, func(r graph.Relationship) bool { return matchForward(f, r) }, compareForward)
					got := formatAll(collect(t, rd.QueryRelationships(ctx, f, storage.QueryOptions{})))
					equalStrings(t, "forward query "+describe(f)+" "+describe(sf), got, want)
					n++
				}
			}
		}
	}
	t.Logf("%d forward filters checked", n)
}

func testReverseQueries(t *testing.T, e storage.Engine) {
	rd, rs := loadFixture(t, e)
	n := 0
	for _, sf := range subjectFilters()[1:] {
		for _, typ := range []string{"", "document", "folder", "missing"} {
			for _, rel := range []string{"", "viewer", "member", "nope"} {
				f := storage.ReverseFilter{Subject: *sf, ResourceType: typ, Relation: rel}
				want := expect(rs, func(r graph.Relationship) bool { return matchReverse(f, r) }, compareReverse)
				got := formatAll(collect(t, rd.ReverseQueryRelationships(ctx, f, storage.QueryOptions{})))
				equalStrings(t, "reverse query "+describe(f)+" "+describe(sf), got, want)
				n++
			}
		}
	}
	t.Logf("%d reverse filters checked", n)
}

// testCursors pages through queries with every small limit and checks that
// resuming after the last result gives exactly the rest, in order.
func testCursors(t *testing.T, e storage.Engine) {
	rd, _ := loadFixture(t, e)
	forward := []storage.Filter{
		{},
		{ResourceType: "document"},
		{ResourceType: "document", ResourceIDs: []string{"2", "1", "10"}},
		{ResourceType: "document", Relation: "viewer", Subject: &storage.SubjectFilter{Type: "user"}},
	}
	for _, f := range forward {
		full := formatAll(collect(t, rd.QueryRelationships(ctx, f, storage.QueryOptions{})))
		for limit := 1; limit <= 4; limit++ {
			var pages []string
			var after *graph.Relationship
			for range 100 {
				page := collect(t, rd.QueryRelationships(ctx, f, storage.QueryOptions{Limit: limit, After: after}))
				if len(page) > limit {
					t.Fatalf("limit %d returned %d", limit, len(page))
				}
				if len(page) == 0 {
					break
				}
				pages = append(pages, formatAll(page)...)
				after = &page[len(page)-1]
			}
			equalStrings(t, fmt.Sprintf("forward %s paged by %d", describe(f), limit), pages, full)
		}
	}
	reverse := []storage.ReverseFilter{
		{Subject: storage.SubjectFilter{Type: "user"}},
		{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"bob", "alice"}}},
		{Subject: storage.SubjectFilter{Type: "group"}, ResourceType: "document"},
	}
	for _, f := range reverse {
		full := formatAll(collect(t, rd.ReverseQueryRelationships(ctx, f, storage.QueryOptions{})))
		for limit := 1; limit <= 3; limit++ {
			var pages []string
			var after *graph.Relationship
			for range 100 {
				page := collect(t, rd.ReverseQueryRelationships(ctx, f, storage.QueryOptions{Limit: limit, After: after}))
				if len(page) == 0 {
					break
				}
				pages = append(pages, formatAll(page)...)
				after = &page[len(page)-1]
			}
			equalStrings(t, fmt.Sprintf("reverse %s paged by %d", describe(f), limit), pages, full)
		}
	}
	// A cursor that is not itself stored still positions the query.
	got := formatAll(collect(t, rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"},
		storage.QueryOptions{After: ptr(R("document:10#zzz@user:a"))})))
	equalStrings(t, "after a cursor that is not stored", got, sorted(
		"document:2#viewer@user:*", "document:2#owner@user:carol", "document:2#parent@folder:a"))
}

// testIDOrdering stores IDs made of every allowed character class and
// checks bytewise order, forward and reverse.
func testIDOrdering(t *testing.T, e storage.Engine) {
	ids := []string{"a", "a-", "a-b", "a/b", "a=b", "a+b", "a_b", "a|b", "aa", "A", "Z", "0", "9", "a0", "ab", "b", "=", "+", "_", "|", "-", "/"}
	var specs []string
	for _, id := range ids {
		specs = append(specs, "document:"+id+"#viewer@user:"+id, "document:x#viewer@user:"+id)
	}
	touch(t, e, specs...)
	rs := rels(specs...)
	rd := reader(t, e, head(t, e))
	got := formatAll(collect(t, rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{})))
	equalStrings(t, "forward order", got, expect(rs, func(graph.Relationship) bool { return true }, compareForward))
	got = formatAll(collect(t, rd.ReverseQueryRelationships(ctx, storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user"}}, storage.QueryOptions{})))
	equalStrings(t, "reverse order", got, expect(rs, func(graph.Relationship) bool { return true }, compareReverse))
	long := strings.Repeat("x", storage.MaxObjectIDLength)
	touch(t, e, "document:"+long+"#viewer@user:"+long)
	got = formatAll(collect(t, reader(t, e, head(t, e)).QueryRelationships(ctx,
		storage.Filter{ResourceType: "document", ResourceIDs: []string{long}}, storage.QueryOptions{})))
	equalStrings(t, "longest id", got, []string{"document:" + long + "#viewer@user:" + long})
}

func testExpiration(t *testing.T, e storage.Engine) {
	exp := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	r := R("document:1#viewer@user:alice")
	r.Expiration = &exp
	write(t, e, storage.OpTouch, r)
	touch(t, e, "document:1#viewer@user:bob")
	rd := reader(t, e, head(t, e))
	f := storage.Filter{ResourceType: "document"}
	rf := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"alice"}}}
	for _, c := range []struct {
		now     time.Time
		visible bool
	}{
		{time.Time{}, true}, // zero means the engine's clock
		{exp.Add(-time.Nanosecond), true},
		{exp, false},
		{exp.Add(time.Second), false},
	} {
		got := collect(t, rd.QueryRelationships(ctx, f, storage.QueryOptions{Now: c.now}))
		want := 1
		if c.visible {
			want = 2
		}
		if len(got) != want {
			t.Fatalf("forward at %v: %q, want %d results", c.now, formatAll(got), want)
		}
		if c.visible {
			if got[0].Expiration == nil || !got[0].Expiration.Equal(exp) {
				t.Fatalf("expiration read back as %v, want %v", got[0].Expiration, exp)
			}
		}
		back := collect(t, rd.ReverseQueryRelationships(ctx, rf, storage.QueryOptions{Now: c.now}))
		if (len(back) == 1) != c.visible {
			t.Fatalf("reverse at %v: %q, visible %v", c.now, formatAll(back), c.visible)
		}
	}
	past := R("document:2#viewer@user:carol")
	past.Expiration = ptr(time.Now().Add(-time.Second))
	write(t, e, storage.OpTouch, past)
	equalStrings(t, "already expired at write", allAtHead(t, e), []string{Format(r), "document:1#viewer@user:bob"})
	// An expired relationship is not there to delete.
	res, err := e.DeleteRelationships(ctx, storage.Filter{ResourceType: "document", ResourceIDs: []string{"2"}}, 0, storage.WriteMetadata{})
	if err != nil || res.Deleted != 0 || res.More {
		t.Fatalf("delete of an expired relationship = %+v, %v; want nothing deleted", res, err)
	}
}

func testCaveatRoundTrip(t *testing.T, e storage.Engine) {
	ctxVal := map[string]any{
		"n":      1.5,
		"i":      float64(42),
		"s":      "text with \"quotes\" and ünïcode",
		"b":      true,
		"null":   nil,
		"list":   []any{float64(1), "two", false, nil, []any{"nested"}},
		"nested": map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": float64(-3)}}}},
	}
	r := R("document:1#viewer@user:alice")
	r.Caveat = &graph.Caveat{Name: "ctx_caveat", Context: ctxVal}
	plain := R("document:2#viewer@user:alice")
	plain.Caveat = &graph.Caveat{Name: "no_context"}
	write(t, e, storage.OpCreate, r, plain)
	rd := reader(t, e, head(t, e))
	got := collect(t, rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{}))
	back := collect(t, rd.ReverseQueryRelationships(ctx, storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user"}}, storage.QueryOptions{}))
	for name, g := range map[string][]graph.Relationship{"forward": got, "reverse": back} {
		if len(g) != 2 || !sameCaveat(g[0].Caveat, r.Caveat) || !sameCaveat(g[1].Caveat, plain.Caveat) {
			t.Fatalf("%s caveats read back as %q, want %q", name, formatAll(g), formatAll([]graph.Relationship{r, plain}))
		}
	}
}

func testExportResume(t *testing.T, e storage.Engine) {
	var specs []string
	for i := range 53 {
		specs = append(specs, fmt.Sprintf("%s:%d#viewer@user:u%d", []string{"document", "folder", "group"}[i%3], i, i%7))
	}
	touch(t, e, specs...)
	rev := head(t, e)
	rd := reader(t, e, rev)
	full := formatAll(collect(t, rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{})))
	equalStrings(t, "export", full, sorted(specs...))
	// Resume from a cursor with a fresh reader at the same revision, while
	// writes continue: the export is of the pinned revision.
	first := collect(t, rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{Limit: 20}))
	touch(t, e, "aaa:0#viewer@user:late", "zzz:0#viewer@user:late")
	write(t, e, storage.OpDelete, R(specs[5]))
	rest := collect(t, reader(t, e, rev).QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{After: &first[19]}))
	equalStrings(t, "export resumed", append(formatAll(first), formatAll(rest)...), full)
}

func testBadFilters(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	rd := reader(t, e, head(t, e))
	forward := map[string]storage.Filter{
		"ids without type":       {ResourceIDs: []string{"1"}},
		"uppercase type":         {ResourceType: "Document"},
		"bad relation":           {ResourceType: "document", Relation: "view er"},
		"empty id":               {ResourceType: "document", ResourceIDs: []string{""}},
		"bad id":                 {ResourceType: "document", ResourceIDs: []string{"a b"}},
		"long id":                {ResourceType: "document", ResourceIDs: []string{strings.Repeat("x", storage.MaxObjectIDLength+1)}},
		"subject without type":   {ResourceType: "document", Subject: &storage.SubjectFilter{IDs: []string{"alice"}}},
		"subject bad relation":   {ResourceType: "document", Subject: &storage.SubjectFilter{Type: "user", Relation: ptr("Bad")}},
		"subject ellipsis words": {ResourceType: "document", Subject: &storage.SubjectFilter{Type: "user", Relation: ptr("...")}},
		"prefix without type":    {ResourceIDPrefix: "1"},
		"prefix and ids":         {ResourceType: "document", ResourceIDs: []string{"1"}, ResourceIDPrefix: "1"},
		"bad prefix":             {ResourceType: "document", ResourceIDPrefix: "a b"},
	}
	for name, f := range forward {
		wantErrIs(t, "forward "+name, firstErr(rd.QueryRelationships(ctx, f, storage.QueryOptions{})), storage.ErrInvalidArgument)
	}
	wantErrIs(t, "negative limit", firstErr(rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{Limit: -1})), storage.ErrInvalidArgument)
	reverse := map[string]storage.ReverseFilter{
		"no subject type":  {},
		"ids without type": {Subject: storage.SubjectFilter{IDs: []string{"alice"}}},
		"bad type":         {Subject: storage.SubjectFilter{Type: "user"}, ResourceType: "doc-ument"},
		"bad relation":     {Subject: storage.SubjectFilter{Type: "user"}, Relation: "Viewer"},
	}
	for name, f := range reverse {
		wantErrIs(t, "reverse "+name, firstErr(rd.ReverseQueryRelationships(ctx, f, storage.QueryOptions{})), storage.ErrInvalidArgument)
	}
	// Preconditions and deletes reject the same filters, writing nothing.
	before := head(t, e)
	_, err := e.Write(ctx, storage.WriteRequest{
		Preconditions: []storage.Precondition{{MustMatch: false, Filter: forward["ids without type"]}},
		Mutations:     mutations(storage.OpTouch, R("document:2#viewer@user:bob")),
	})
	wantErrIs(t, "precondition with a bad filter", err, storage.ErrInvalidArgument)
	_, err = e.DeleteRelationships(ctx, forward["bad id"], 0, storage.WriteMetadata{})
	wantErrIs(t, "delete with a bad filter", err, storage.ErrInvalidArgument)
	if h := head(t, e); h != before {
		t.Fatalf("rejected requests moved head %d -> %d", before, h)
	}
}

func testBadWrites(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	before := head(t, e)
	good := "document:2#viewer@user:bob"
	long := strings.Repeat("x", storage.MaxObjectIDLength+1)
	withCaveat := func(spec string, c *graph.Caveat) graph.Relationship {
		r := R(spec)
		r.Caveat = c
		return r
	}
	cases := map[string]graph.Relationship{
		"empty resource type":      {Resource: graph.ObjectRef{ID: "1"}, Relation: "viewer", Subject: R(good).Subject},
		"empty resource id":        R("document:#viewer@user:bob"),
		"empty relation":           R("document:1#@user:bob"),
		"empty subject type":       R("document:1#viewer@:bob"),
		"empty subject id":         R("document:1#viewer@user:"),
		"uppercase type":           R("Document:1#viewer@user:bob"),
		"space in id":              R("document:a b#viewer@user:bob"),
		"colon in id":              R("document:a:b#viewer@user:bob"),
		"hash in subject id":       R("document:1#viewer@user:a%b"),
		"wildcard resource":        R("document:*#viewer@user:bob"),
		"wildcard with relation":   R("document:1#viewer@user:*#member"),
		"ellipsis spelled out":     R("document:1#viewer@group:eng#..."),
		"long resource id":         R("document:" + long + "#viewer@user:bob"),
		"long subject id":          R("document:1#viewer@user:" + long),
		"long relation":            R("document:1#" + strings.Repeat("v", storage.MaxNameLength+1) + "@user:bob"),
		"long type":                R(strings.Repeat("d", storage.MaxNameLength+1) + ":1#viewer@user:bob"),
		"relation with dash":       R("document:1#view-er@user:bob"),
		"caveat without name":      withCaveat(good, &graph.Caveat{}),
		"caveat bad name":          withCaveat(good, &graph.Caveat{Name: "Bad Name"}),
		"caveat context too large": withCaveat(good, &graph.Caveat{Name: "big", Context: map[string]any{"k": strings.Repeat("v", storage.MaxCaveatContextBytes)}}),
		"caveat context not json":  withCaveat(good, &graph.Caveat{Name: "nan", Context: map[string]any{"k": math.NaN()}}),
		"zero expiration":          {Resource: R(good).Resource, Relation: "viewer", Subject: R(good).Subject, Expiration: &time.Time{}},
	}
	for name, bad := range cases {
		for _, op := range []storage.Op{storage.OpCreate, storage.OpTouch, storage.OpDelete} {
			_, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
				{Op: storage.OpTouch, Relationship: R(good)},
				{Op: op, Relationship: bad},
			}})
			wantErrIs(t, fmt.Sprintf("%s %s", op, name), err, storage.ErrInvalidArgument)
		}
	}
	_, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.Op(99), Relationship: R(good)}}})
	wantErrIs(t, "unknown op", err, storage.ErrInvalidArgument)
	if h := head(t, e); h != before {
		t.Fatalf("rejected writes moved head %d -> %d", before, h)
	}
	equalStrings(t, "after rejected writes", allAtHead(t, e), []string{"document:1#viewer@user:alice"})
}

func testReaderConcurrent(t *testing.T, e storage.Engine) {
	rd, rs := loadFixture(t, e)
	want := expect(rs, func(graph.Relationship) bool { return true }, compareForward)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				if w%2 == 0 && i%5 == 0 {
					if _, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch,
						R(fmt.Sprintf("zdoc:%d_%d#viewer@user:x", w, i)))}); err != nil {
						errs <- err.Error()
						return
					}
				}
				var got []string
				for r, err := range rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}) {
					if err != nil {
						errs <- err.Error()
						return
					}
					got = append(got, Format(r))
				}
				if !slices.Equal(got, want) {
					errs <- fmt.Sprintf("concurrent read %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Fatal(msg)
	}
}
