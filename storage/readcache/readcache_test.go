package readcache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
	"github.com/pembadb/pemba/storage/readcache"
	"github.com/pembadb/pemba/storage/storagetest"
)

var ctx = context.Background()

// cachedEngine is a storage engine whose readers all go through one cache,
// so the conformance suite checks that a cached reader answers exactly as
// the engine beneath it.
type cachedEngine struct {
	storage.Engine
	cache *readcache.Cache
}

func (e cachedEngine) SnapshotReader(ctx context.Context, rev storage.Revision) (storage.Reader, error) {
	r, err := e.Engine.SnapshotReader(ctx, rev)
	if err != nil {
		return nil, err
	}
	return e.cache.Reader(r), nil
}

func openMemory(t *testing.T) storage.Engine {
	t.Helper()
	e, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		return cachedEngine{Engine: openMemory(t), cache: readcache.New(readcache.Config{MaxRows: 8})}
	}, storagetest.WithTamper(tamper))
}

// tamper rewrites a stored audit entry in the engine beneath the cache.
func tamper(t *testing.T, e storage.Engine, rev storage.Revision, edit func([]byte) []byte) {
	t.Helper()
	if err := e.(cachedEngine).Engine.(*pebble.Engine).RewriteAuditEntry(rev, edit); err != nil {
		t.Fatal(err)
	}
}

// TestConformanceTinyCache runs the suite with a cache so small that
// nearly every result is evicted at once.
func TestConformanceTinyCache(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		return cachedEngine{Engine: openMemory(t), cache: readcache.New(readcache.Config{MaxBytes: 600})}
	}, storagetest.WithTamper(tamper))
}

func rel(s string) graph.Relationship {
	r, err := graph.ParseRelationship(s)
	if err != nil {
		panic(err)
	}
	return r
}

func write(t *testing.T, e storage.Engine, rels ...graph.Relationship) storage.Revision {
	t.Helper()
	var ms []storage.Mutation
	for _, r := range rels {
		ms = append(ms, storage.Mutation{Op: storage.OpTouch, Relationship: r})
	}
	rev, err := e.Write(ctx, storage.WriteRequest{Mutations: ms})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func strs(t *testing.T, seq func(func(graph.Relationship, error) bool)) []string {
	t.Helper()
	var out []string
	for r, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.String())
	}
	return out
}

func TestServesRepeatedQueriesFromMemory(t *testing.T) {
	e := openMemory(t)
	rev := write(t, e, rel("doc:1#viewer@user:a"), rel("doc:1#viewer@user:b"), rel("group:g#member@user:a"))
	c := readcache.New(readcache.Config{})
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Reader(snap)
	fwd := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1"}, Relation: "viewer"}
	rev1 := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"a"}}}
	for range 3 {
		if got := fmt.Sprint(strs(t, r.QueryRelationships(ctx, fwd, storage.QueryOptions{}))); got != "[doc:1#viewer@user:a doc:1#viewer@user:b]" {
			t.Fatalf("forward = %s", got)
		}
		if got := fmt.Sprint(strs(t, r.ReverseQueryRelationships(ctx, rev1, storage.QueryOptions{}))); got != "[doc:1#viewer@user:a group:g#member@user:a]" {
			t.Fatalf("reverse = %s", got)
		}
	}
	if s := c.Stats(); s.Misses != 2 || s.Hits != 4 || s.Entries != 2 || s.Bytes <= 0 {
		t.Fatalf("stats = %+v, want 2 misses, 4 hits, 2 entries", s)
	}
	// Another reader at the same revision shares the entries.
	snap2, _ := e.SnapshotReader(ctx, rev)
	strs(t, c.Reader(snap2).QueryRelationships(ctx, fwd, storage.QueryOptions{}))
	if s := c.Stats(); s.Hits != 5 {
		t.Fatalf("hits after a second reader = %d, want 5", s.Hits)
	}
}

func TestRevisionsAreSeparate(t *testing.T) {
	e := openMemory(t)
	c := readcache.New(readcache.Config{})
	r1 := write(t, e, rel("doc:1#viewer@user:a"))
	r2 := write(t, e, rel("doc:1#viewer@user:b"))
	f := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1"}}
	for _, tc := range []struct {
		rev  storage.Revision
		want string
	}{
		{r1, "[doc:1#viewer@user:a]"},
		{r2, "[doc:1#viewer@user:a doc:1#viewer@user:b]"},
		{r1, "[doc:1#viewer@user:a]"},
	} {
		snap, err := e.SnapshotReader(ctx, tc.rev)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(strs(t, c.Reader(snap).QueryRelationships(ctx, f, storage.QueryOptions{}))); got != tc.want {
			t.Fatalf("at revision %d: %s, want %s", tc.rev, got, tc.want)
		}
	}
	if s := c.Stats(); s.Hits != 1 || s.Misses != 2 {
		t.Fatalf("stats = %+v, want 1 hit and 2 misses", s)
	}
}

func TestExpiringRowsLeaveOnTime(t *testing.T) {
	e := openMemory(t)
	t0 := time.Now().Add(time.Hour)
	exp := t0.Add(time.Minute)
	soon := rel("doc:1#viewer@user:a")
	soon.Expiration = &exp
	rev := write(t, e, soon, rel("doc:1#viewer@user:b"))
	c := readcache.New(readcache.Config{})
	snap, _ := e.SnapshotReader(ctx, rev)
	r := c.Reader(snap)
	f := storage.Filter{ResourceType: "doc"}
	for _, tc := range []struct {
		now  time.Time
		want int
		hits uint64
	}{
		{t0, 2, 0},
		{exp.Add(-time.Nanosecond), 2, 1}, // inside [at, until): served from memory
		{exp, 1, 1},                       // the row has expired: read again
		{exp.Add(time.Second), 1, 2},      // nothing in the new result expires
		{t0, 2, 2},                        // before the entry's instant: read again
		{exp.Add(-time.Nanosecond), 2, 3}, // and the earlier entry is back
	} {
		got := strs(t, r.QueryRelationships(ctx, f, storage.QueryOptions{Now: tc.now}))
		if len(got) != tc.want {
			t.Fatalf("at %v: %q, want %d rows", tc.now, got, tc.want)
		}
		if h := c.Stats().Hits; h != tc.hits {
			t.Fatalf("at %v: %d hits, want %d", tc.now, h, tc.hits)
		}
	}
}

// docs stores n relationships doc:<i>#viewer@user:a and returns them with
// a snapshot that reads them.
func docs(t *testing.T, n int) ([]graph.Relationship, storage.Reader) {
	t.Helper()
	e := openMemory(t)
	var rels []graph.Relationship
	for i := range n {
		rels = append(rels, rel(fmt.Sprintf("doc:%d#viewer@user:a", i)))
	}
	snap, err := e.SnapshotReader(ctx, write(t, e, rels...))
	if err != nil {
		t.Fatal(err)
	}
	return rels, snap
}

func TestUncacheableResults(t *testing.T) {
	rels, snap := docs(t, 10)
	after := rels[2]
	for _, tc := range []struct {
		name string
		f    storage.Filter
		opts storage.QueryOptions
		read func(r storage.Reader, f storage.Filter, o storage.QueryOptions) int
		want int
	}{
		{"more rows than MaxRows", storage.Filter{ResourceType: "doc"}, storage.QueryOptions{}, readAll, 10},
		{"after a cursor", storage.Filter{ResourceType: "doc"}, storage.QueryOptions{After: &after}, readAll, 7},
		{"abandoned by the caller", storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1", "2"}}, storage.QueryOptions{}, readOne, 1},
		{"an invalid filter", storage.Filter{ResourceIDs: []string{"1"}}, storage.QueryOptions{}, readAll, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := readcache.New(readcache.Config{MaxRows: 5})
			r := c.Reader(snap)
			for range 2 {
				if n := tc.read(r, tc.f, tc.opts); n != tc.want {
					t.Fatalf("read %d rows, want %d", n, tc.want)
				}
			}
			if s := c.Stats(); s.Entries != 0 || s.Hits != 0 {
				t.Fatalf("stats = %+v, want nothing stored or served", s)
			}
		})
	}
	// A result cut short by its limit answers the same query with the same
	// limit, and no other.
	c := readcache.New(readcache.Config{})
	r := c.Reader(snap)
	for _, tc := range []struct {
		limit, rows int
		hits        uint64
	}{{3, 3, 0}, {3, 3, 1}, {4, 4, 1}, {11, 10, 1}, {11, 10, 2}, {0, 10, 2}} {
		if n := readAll(r, storage.Filter{ResourceType: "doc"}, storage.QueryOptions{Limit: tc.limit}); n != tc.rows {
			t.Fatalf("limit %d: %d rows, want %d", tc.limit, n, tc.rows)
		}
		if h := c.Stats().Hits; h != tc.hits {
			t.Fatalf("limit %d: %d hits, want %d", tc.limit, h, tc.hits)
		}
	}
}

// TestLimitedResultAfterExpiry: a row past the limit takes the place of an
// expired one once the cached result's first row expires.
func TestLimitedResultAfterExpiry(t *testing.T) {
	e := openMemory(t)
	t0 := time.Now().Add(time.Hour)
	exp := t0.Add(time.Minute).Truncate(time.Second).UTC()
	first := rel("doc:1#viewer@user:a")
	first.Expiration = &exp
	rev := write(t, e, first, rel("doc:1#viewer@user:b"), rel("doc:1#viewer@user:c"))
	snap, _ := e.SnapshotReader(ctx, rev)
	r := readcache.New(readcache.Config{}).Reader(snap)
	f := storage.Filter{ResourceType: "doc"}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{t0, "[" + first.String() + " doc:1#viewer@user:b]"},
		{exp.Add(-time.Nanosecond), "[" + first.String() + " doc:1#viewer@user:b]"},
		{exp, "[doc:1#viewer@user:b doc:1#viewer@user:c]"},
	} {
		if got := fmt.Sprint(strs(t, r.QueryRelationships(ctx, f, storage.QueryOptions{Now: tc.now, Limit: 2}))); got != tc.want {
			t.Fatalf("at %v: %s, want %s", tc.now, got, tc.want)
		}
	}
}

// readAll counts the rows of a query, or returns -1 on an error.
func readAll(r storage.Reader, f storage.Filter, o storage.QueryOptions) int {
	n := 0
	for _, err := range r.QueryRelationships(ctx, f, o) {
		if err != nil {
			return -1
		}
		n++
	}
	return n
}

func readOne(r storage.Reader, f storage.Filter, o storage.QueryOptions) int {
	for _, err := range r.QueryRelationships(ctx, f, o) {
		if err != nil {
			return -1
		}
		return 1
	}
	return 0
}

func TestBoundedByBytes(t *testing.T) {
	_, snap := docs(t, 200)
	const max = 4 << 10
	c := readcache.New(readcache.Config{MaxBytes: max})
	r := c.Reader(snap)
	for i := range 200 {
		readAll(r, storage.Filter{ResourceType: "doc", ResourceIDs: []string{fmt.Sprint(i)}}, storage.QueryOptions{})
		if s := c.Stats(); s.Bytes > max {
			t.Fatalf("after %d queries the cache holds %d bytes, over its bound of %d", i+1, s.Bytes, max)
		}
	}
	s := c.Stats()
	if s.Entries == 0 || s.Entries >= 200 {
		t.Fatalf("entries = %d, want some but not all 200", s.Entries)
	}
	// The most recent query is still there; the first was evicted.
	readAll(r, storage.Filter{ResourceType: "doc", ResourceIDs: []string{"199"}}, storage.QueryOptions{})
	readAll(r, storage.Filter{ResourceType: "doc", ResourceIDs: []string{"0"}}, storage.QueryOptions{})
	if got := c.Stats(); got.Hits != 1 {
		t.Fatalf("hits = %d, want 1 (the newest entry only)", got.Hits)
	}
}

// TestKeysKeepFiltersApart: filters that differ only in how their fields
// split, or in "any subject relation" against "no subject relation", never
// share an entry.
func TestKeysKeepFiltersApart(t *testing.T) {
	e := openMemory(t)
	rev := write(t, e, rel("doc:ab#viewer@user:a"), rel("doc:a#viewer@user:b"), rel("doc:b#viewer@user:c"),
		rel("doc:a#viewer@group:g#member"), rel("doc:a#viewer@group:h"))
	snap, _ := e.SnapshotReader(ctx, rev)
	r := readcache.New(readcache.Config{}).Reader(snap)
	ellipsis, member := "", "member"
	for _, tc := range []struct {
		f    storage.Filter
		want string
	}{
		{storage.Filter{ResourceType: "doc", ResourceIDs: []string{"ab"}}, "[doc:ab#viewer@user:a]"},
		{storage.Filter{ResourceType: "doc", ResourceIDs: []string{"a", "b"}},
			"[doc:a#viewer@group:g#member doc:a#viewer@group:h doc:a#viewer@user:b doc:b#viewer@user:c]"},
		{storage.Filter{ResourceType: "doc", Subject: &storage.SubjectFilter{Type: "group"}},
			"[doc:a#viewer@group:g#member doc:a#viewer@group:h]"},
		{storage.Filter{ResourceType: "doc", Subject: &storage.SubjectFilter{Type: "group", Relation: &ellipsis}}, "[doc:a#viewer@group:h]"},
		{storage.Filter{ResourceType: "doc", Subject: &storage.SubjectFilter{Type: "group", Relation: &member}}, "[doc:a#viewer@group:g#member]"},
		{storage.Filter{ResourceType: "doc", ResourceIDs: []string{"ab"}}, "[doc:ab#viewer@user:a]"},
	} {
		if got := fmt.Sprint(strs(t, r.QueryRelationships(ctx, tc.f, storage.QueryOptions{}))); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.f, got, tc.want)
		}
	}
}

// TestQueryRelationshipSlice: the whole-result form answers as the
// iterator does, shares the cache, and hands out slices an append cannot
// write through.
func TestQueryRelationshipSlice(t *testing.T) {
	e := openMemory(t)
	rev := write(t, e, rel("doc:1#viewer@user:a"), rel("doc:1#viewer@user:b"), rel("doc:2#viewer@user:c"))
	snap, _ := e.SnapshotReader(ctx, rev)
	c := readcache.New(readcache.Config{})
	r := c.Reader(snap).(interface {
		storage.Reader
		QueryRelationshipSlice(context.Context, storage.Filter, storage.QueryOptions) ([]graph.Relationship, error)
	})
	f := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1", "2"}}
	want := fmt.Sprint(strs(t, r.QueryRelationships(ctx, f, storage.QueryOptions{})))
	for i := range 2 {
		rows, err := r.QueryRelationshipSlice(ctx, f, storage.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range rows {
			got = append(got, x.String())
		}
		if fmt.Sprint(got) != want {
			t.Fatalf("call %d: %v, want %s", i, got, want)
		}
		if cap(rows) != len(rows) {
			t.Fatalf("call %d: capacity %d beyond length %d: an append would write into the cache", i, cap(rows), len(rows))
		}
		_ = append(rows, rel("doc:9#viewer@user:z"))
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 {
		t.Errorf("stats = %+v, want 1 miss (the iterator) and 2 hits", s)
	}
	if _, err := r.QueryRelationshipSlice(ctx, storage.Filter{ResourceIDs: []string{"1"}}, storage.QueryOptions{}); err == nil {
		t.Errorf("an invalid filter was answered")
	}
}

// sliceUpTo is the read an Expand makes of every object#relation.
type sliceUpTo interface {
	QueryRelationshipSliceUpTo(ctx context.Context, f storage.Filter, opts storage.QueryOptions, max int) ([]graph.Relationship, bool, error)
}

// TestQueryRelationshipSliceUpTo: a result within the budget is the whole
// result and shares the cache; a longer one is reported as such, whether
// it was cached or read.
func TestQueryRelationshipSliceUpTo(t *testing.T) {
	e := openMemory(t)
	rev := write(t, e, rel("doc:1#viewer@user:a"), rel("doc:1#viewer@user:b"), rel("doc:1#viewer@user:c"))
	snap, _ := e.SnapshotReader(ctx, rev)
	c := readcache.New(readcache.Config{})
	r := c.Reader(snap).(sliceUpTo)
	f := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1"}, Relation: "viewer"}
	for _, tc := range []struct {
		max        int
		whole      bool
		hits, miss uint64
	}{
		{2, false, 0, 1}, // read: three rows are over two, and nothing is cached
		{3, true, 0, 2},  // read and cached
		{2, false, 1, 2}, // cached, over the budget
		{5, true, 2, 2},  // cached
	} {
		rows, whole, err := r.QueryRelationshipSliceUpTo(ctx, f, storage.QueryOptions{}, tc.max)
		if err != nil {
			t.Fatal(err)
		}
		if whole != tc.whole || whole && len(rows) != 3 || !whole && rows != nil {
			t.Errorf("max %d: %d rows, whole %v; want whole %v", tc.max, len(rows), whole, tc.whole)
		}
		if s := c.Stats(); s.Hits != tc.hits || s.Misses != tc.miss {
			t.Errorf("max %d: stats %+v, want %d hits and %d misses", tc.max, s, tc.hits, tc.miss)
		}
	}
}
