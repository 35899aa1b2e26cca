package check

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// countingReader counts the queries a reader answers and the rows it
// yields.
type countingReader struct {
	storage.Reader
	queries, rows atomic.Int64
}

func (c *countingReader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	c.queries.Add(1)
	return c.count(c.Reader.QueryRelationships(ctx, f, opts))
}

func (c *countingReader) ReverseQueryRelationships(ctx context.Context, f storage.ReverseFilter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	c.queries.Add(1)
	return c.count(c.Reader.ReverseQueryRelationships(ctx, f, opts))
}

func (c *countingReader) count(seq iter.Seq2[graph.Relationship, error]) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for r, err := range seq {
			if err == nil {
				c.rows.Add(1)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// reads returns the counters and resets them.
func (c *countingReader) reads() (queries, rows int64) {
	return c.queries.Swap(0), c.rows.Swap(0)
}

const pagingSchema = `
caveat weekday(day string) { day != "sunday" }
definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation viewer: user | group#member
	permission view = viewer
}
definition document {
	relation parent: folder
	relation viewer: user | user with weekday | group#member
	relation banned: user
	permission view = (viewer + parent->view) - banned
}`

// pagingWorld is a subject whose view reaches n documents in several ways
// that overlap: directly, through a chain of nested groups, through
// folders, some only under a caveat and some taken away by a ban.
func pagingWorld(n int) []graph.Relationship {
	var rels []graph.Relationship
	add := func(s string) { rels = append(rels, graph.MustParseRelationship(s)) }
	add("group:g0#member@user:ann")
	add("group:g1#member@group:g0#member")
	add("group:g2#member@group:g1#member")
	add("folder:f0#viewer@group:g2#member")
	add("folder:f1#viewer@user:ann")
	for i := range n {
		d := fmt.Sprintf("document:d%05d", (i*7919)%n) // IDs not in the order written
		switch i % 5 {
		case 0:
			add(d + "#viewer@user:ann")
		case 1:
			add(d + "#viewer@group:g2#member")
			add(d + "#viewer@user:ann") // reached twice
		case 2:
			add(d + `#viewer@user:ann[weekday]`) // a candidate: checked
		case 3:
			add(d + "#parent@folder:f" + fmt.Sprint(i%2))
		case 4:
			add(d + "#viewer@group:g0#member")
			if i%10 == 4 {
				add(d + "#banned@user:ann") // a candidate the check refuses
			}
		}
	}
	return rels
}

// TestLookupResourcesPaging pages through a large result: the pages
// together are exactly the unpaged result, each resource once, and a
// page reads no more from the datastore near the end than at the start.
func TestLookupResourcesPaging(t *testing.T) {
	const n, limit = 5000, 50
	s, err := schema.Compile("paging.zed", pagingSchema)
	if err != nil {
		t.Fatal(err)
	}
	store := newTestStore(t)
	store.write(t, pagingWorld(n))
	reader := &countingReader{Reader: store.reader(t)}
	snap := Snapshot{Schema: s, Reader: reader}
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1}) // every read reaches the counter
	ctx := context.Background()
	req := LookupResourcesRequest{ResourceType: "document", Permission: "view",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ann"}}, Context: map[string]any{"day": "monday"}, Now: goldenNow}

	var all []string
	if err := e.LookupResources(ctx, snap, req, func(r ResourceResult) bool {
		all = append(all, r.ID)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := n - n/10; len(all) != want {
		t.Fatalf("unpaged lookup: %d results, want %d", len(all), want)
	}
	reader.reads()

	var paged []string
	var queries, rows []int64
	req.Limit = limit
	for page := 0; ; page++ {
		got := 0
		if err := e.LookupResources(ctx, snap, req, func(r ResourceResult) bool {
			paged = append(paged, r.ID)
			req.Cursor = r.Cursor
			got++
			return true
		}); err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		q, r := reader.reads()
		queries, rows = append(queries, q), append(rows, r)
		if got < limit {
			break
		}
		if page > n/limit {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged results differ from the unpaged ones: %d vs %d results", len(paged), len(all))
	}
	if !slices.IsSorted(paged) || len(slices.Compact(slices.Clone(paged))) != len(paged) {
		t.Errorf("paged results are not in ID order, each once")
	}
	// The reads of a page depend on the page's size and the subject's
	// groups and folders, not on how far into the result it is: compare
	// the last full pages with the first.
	last := len(queries) - 2
	for _, p := range []int{last / 2, last} {
		if queries[p] > queries[0]+2 || rows[p] > 2*rows[0]+limit {
			t.Errorf("page %d read %d rows in %d queries; page 0 read %d rows in %d queries", p, rows[p], queries[p], rows[0], queries[0])
		}
	}
	if max := slices.Max(rows); max > 10*limit {
		t.Errorf("a page read %d rows for %d results", max, limit)
	}
	t.Logf("pages: %d; reads per page: first %d queries/%d rows, last %d/%d", len(queries), queries[0], rows[0], queries[last], rows[last])
}

// TestLookupResourcesPagingExpiry: a relationship expiring between two
// pages neither repeats nor hides another result. An ID-ordered cursor
// resumes after its ID; a walk-order cursor, which cannot tell what moved,
// fails with ErrStaleCursor instead of answering wrongly.
func TestLookupResourcesPagingExpiry(t *testing.T) {
	s, err := schema.Compile("expiry.zed", `use expiration
definition user {}
definition folder {
	relation parent: folder
	relation viewer: user
	permission view = viewer + parent->view
}
definition document {
	relation viewer: user with expiration
	permission view = viewer
}`)
	if err != nil {
		t.Fatal(err)
	}
	t0 := goldenNow
	soon := t0.Add(time.Minute).Format(time.RFC3339)
	store := newTestStore(t)
	var rels []graph.Relationship
	for _, r := range []string{
		"document:d1#viewer@user:ann", "document:d2#viewer@user:ann",
		"document:d3#viewer@user:ann[expiration:" + soon + "]", "document:d4#viewer@user:ann",
		"folder:a#viewer@user:ann[expiration:" + soon + "]",
		"folder:b#parent@folder:a", "folder:c#viewer@user:ann", "folder:d#parent@folder:c",
	} {
		rels = append(rels, graph.MustParseRelationship(r))
	}
	store.write(t, rels)
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	e := New(Config{})
	ann := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ann"}}
	page := func(typ, cursor string, now time.Time) ([]string, string, error) {
		var ids []string
		err := e.LookupResources(context.Background(), snap, LookupResourcesRequest{ResourceType: typ, Permission: "view", Subject: ann,
			Now: now, Limit: 2, Cursor: cursor}, func(r ResourceResult) bool {
			ids = append(ids, r.ID)
			cursor = r.Cursor
			return true
		})
		return ids, cursor, err
	}
	later := t0.Add(time.Hour)

	first, cursor, err := page("document", "", t0)
	if err != nil || !slices.Equal(first, []string{"d1", "d2"}) {
		t.Fatalf("documents, page 1: %v %v", first, err)
	}
	docCursor := cursor
	second, _, err := page("document", cursor, later) // d3 expired in between
	if err != nil || !slices.Equal(second, []string{"d4"}) {
		t.Errorf("documents, page 2 after d3 expired: %v %v, want [d4]", second, err)
	}

	first, cursor, err = page("folder", "", t0)
	if err != nil || len(first) != 2 {
		t.Fatalf("folders, page 1: %v %v", first, err)
	}
	if _, _, err := page("folder", cursor, t0); err != nil {
		t.Errorf("folders, page 2 at the same instant: %v", err)
	}
	if _, _, err := page("folder", cursor, later); !errors.Is(err, ErrStaleCursor) {
		t.Errorf("folders, page 2 after folder:a expired: %v, want ErrStaleCursor", err)
	}
	// A cursor of another lookup is refused, not followed.
	if _, _, err := page("folder", docCursor, t0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("an ID-ordered cursor on a walk-order lookup: %v, want ErrInvalidRequest", err)
	}
	if _, _, err := page("document", cursor, t0); !errors.Is(err, ErrStaleCursor) {
		t.Errorf("a folder cursor on a document lookup: %v, want ErrStaleCursor", err)
	}
}

// BenchmarkLookupResourcesPage measures one page (1000 results) of a
// 200,000-document result, at its start and near its end: with a
// resuming cursor both cost the same.
func BenchmarkLookupResourcesPage(b *testing.B) {
	const n, limit = 200000, 1000
	s, err := schema.Compile("paging.zed", pagingSchema)
	if err != nil {
		b.Fatal(err)
	}
	store := newTestStore(b)
	store.write(b, pagingWorld(n))
	snap := Snapshot{Schema: s, Reader: store.reader(b)}
	e := New(Config{})
	ctx := context.Background()
	req := LookupResourcesRequest{ResourceType: "document", Permission: "view",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ann"}}, Context: map[string]any{"day": "monday"}, Now: goldenNow, Limit: limit}
	// Collect the cursor that starts each page.
	cursors := []string{""}
	for {
		got, last := 0, ""
		if err := e.LookupResources(ctx, snap, LookupResourcesRequest{ResourceType: req.ResourceType, Permission: req.Permission,
			Subject: req.Subject, Context: req.Context, Now: req.Now, Limit: 100 * limit, Cursor: cursors[len(cursors)-1]}, func(r ResourceResult) bool {
			if got++; got%limit == 0 {
				cursors = append(cursors, r.Cursor)
			}
			last = r.Cursor
			return true
		}); err != nil {
			b.Fatal(err)
		}
		if got < 100*limit || last == "" {
			break
		}
	}
	for _, p := range []int{0, len(cursors) / 2, len(cursors) - 2} {
		b.Run(fmt.Sprintf("page=%d", p), func(b *testing.B) {
			req := req
			req.Cursor = cursors[p]
			for b.Loop() {
				got := 0
				if err := e.LookupResources(ctx, snap, req, func(ResourceResult) bool { got++; return true }); err != nil || got != limit {
					b.Fatalf("page %d: %d results, %v", p, got, err)
				}
			}
		})
	}
}
