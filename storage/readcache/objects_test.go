package readcache_test

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/readcache"
)

// objectsReader is the reader method the check engine's prefetch uses.
type objectsReader interface {
	QueryObjects(ctx context.Context, typ string, ids []string, perObject int, opts storage.QueryOptions) ([][]graph.Relationship, error)
}

// TestQueryObjectsSharesObjects: a batch of objects is answered object by
// object, from the cache where an earlier batch (or the object's own
// query) left its rows, and each object's rows are what its own query
// returns.
func TestQueryObjectsSharesObjects(t *testing.T) {
	e := openMemory(t)
	var rels []graph.Relationship
	add := func(obj string, n int) {
		for i := range n {
			rels = append(rels, rel(fmt.Sprintf("doc:%s#viewer@user:u%03d", obj, i)))
		}
	}
	add("a", 2)
	add("c", 40)
	add("d", 1)
	add("p", 70)
	add("q", 5)
	rev := write(t, e, rels...)
	c := readcache.New(readcache.Config{})
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Reader(snap).(objectsReader)
	query := func(ids ...string) map[string][]graph.Relationship {
		t.Helper()
		rows, err := r.QueryObjects(ctx, "doc", ids, 32, storage.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]graph.Relationship{}
		for i, id := range ids {
			if rows[i] != nil {
				got[id] = rows[i]
			}
		}
		return got
	}
	counts := func(got map[string][]graph.Relationship) string {
		return fmt.Sprint(len(got["a"]), len(got["b"]), len(got["c"]), len(got["d"]), len(got["p"]), " ", func() []string {
			var ids []string
			for _, id := range []string{"a", "b", "c", "d", "p", "q"} {
				if _, ok := got[id]; ok {
					ids = append(ids, id)
				}
			}
			return ids
		}())
	}
	got := query("a", "b", "c")
	// b has no rows (but complete), c is cut to its first 32 (it may have more).
	if s := counts(got); s != "2 0 32 0 0 [a b c]" {
		t.Fatalf("first batch: %s", s)
	}
	if st := c.Stats(); st.Misses != 3 || st.Hits != 0 || st.Entries != 3 {
		t.Fatalf("after the first batch: %+v, want 3 misses and 3 entries", st)
	}
	got = query("a", "d")
	if s := counts(got); s != "2 0 0 1 0 [a d]" || c.Stats().Hits != 1 {
		t.Fatalf("second batch: %s, %+v: want a from the cache", s, c.Stats())
	}
	// Each object's entry is its own query's: a single query shares it,
	// and returns the same rows.
	one := fmt.Sprint(strs(t, c.Reader(snap).QueryRelationships(ctx, storage.Filter{ResourceType: "doc", ResourceIDs: []string{"c"}}, storage.QueryOptions{Limit: 32})))
	if c.Stats().Hits != 2 {
		t.Fatalf("the single query of c missed the entry the batch kept: %+v", c.Stats())
	}
	var want []string
	for _, x := range rels[2:34] {
		want = append(want, x.String())
	}
	if one != fmt.Sprint(want) {
		t.Fatalf("c's own query: %s, want %s", one, want)
	}
	// The shared query's limit (64 for two objects) is spent on p: p is
	// cut to 32, and q, never reached, is left out.
	got = query("p", "q")
	if s := counts(got); s != "0 0 0 0 32 [p]" {
		t.Fatalf("a batch cut by its limit: %s", s)
	}
	if _, err := r.QueryObjects(ctx, "doc", []string{"bad id"}, 32, storage.QueryOptions{}); err == nil {
		t.Fatal("an invalid ID was accepted")
	}
}

// relationObjectsReader is the reader method the check engine's set
// evaluation uses.
type relationObjectsReader interface {
	QueryRelationObjects(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions) ([][]graph.Relationship, error)
}

// TestQueryRelationObjects: a batch reads one relation of each object
// whole, shares the objects an earlier batch kept, and keeps each object's
// rows as its own query's result when they are few enough to cache.
func TestQueryRelationObjects(t *testing.T) {
	e := openMemory(t)
	var rels []graph.Relationship
	for obj, n := range map[string]int{"a": 2, "c": 200, "d": 1} {
		for i := range n {
			rels = append(rels, rel(fmt.Sprintf("doc:%s#viewer@user:u%03d", obj, i)))
		}
		rels = append(rels, rel(fmt.Sprintf("doc:%s#owner@user:boss", obj)))
	}
	rev := write(t, e, rels...)
	c := readcache.New(readcache.Config{})
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Reader(snap).(relationObjectsReader)
	query := func(ids ...string) string {
		t.Helper()
		rows, err := r.QueryRelationObjects(ctx, "doc", "viewer", ids, storage.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var counts []int
		for i, id := range ids {
			for _, x := range rows[i] {
				if x.Resource.ID != id || x.Relation != "viewer" {
					t.Fatalf("%s's rows hold %s", id, x)
				}
			}
			counts = append(counts, len(rows[i]))
		}
		return fmt.Sprint(counts)
	}
	// Every row of each object (c's 200 too), b complete and empty.
	if got := query("a", "b", "c"); got != "[2 0 200]" {
		t.Fatalf("first batch: %s", got)
	}
	// a and b were kept; c has more rows than an entry holds.
	if st := c.Stats(); st.Entries != 2 {
		t.Fatalf("after the first batch: %+v, want 2 entries", st)
	}
	if got := query("d", "a", "c"); got != "[1 2 200]" || c.Stats().Hits != 1 {
		t.Fatalf("second batch: %s, %+v: want a from the cache", got, c.Stats())
	}
	// d's entry is its own query's.
	one := strs(t, c.Reader(snap).QueryRelationships(ctx, storage.Filter{ResourceType: "doc", ResourceIDs: []string{"d"}, Relation: "viewer"}, storage.QueryOptions{}))
	if c.Stats().Hits != 2 || fmt.Sprint(one) != "[doc:d#viewer@user:u000]" {
		t.Fatalf("d's own query: %v, %+v: want the batch's entry", one, c.Stats())
	}
	if _, err := r.QueryRelationObjects(ctx, "doc", "", []string{"a"}, storage.QueryOptions{}); err == nil {
		t.Fatal("a read without a relation was accepted")
	}
}

// countingReader counts the rows a store's reader yields.
type countingReader struct {
	storage.Reader
	rows int
}

func (c *countingReader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for r, err := range c.Reader.QueryRelationships(ctx, f, opts) {
			c.rows++
			if !yield(r, err) {
				return
			}
		}
	}
}

// relationObjectsUpToReader is the reader method Expand warms the cache
// with.
type relationObjectsUpToReader interface {
	QueryRelationObjectsUpTo(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions, max int) ([][]graph.Relationship, error)
}

// TestQueryRelationObjectsUpTo: a batch with a budget reads at most that
// many rows, returns and keeps the objects it read whole, and leaves out
// (neither returns nor keeps) the one the budget may have cut.
func TestQueryRelationObjectsUpTo(t *testing.T) {
	e := openMemory(t)
	var rels []graph.Relationship
	for obj, n := range map[string]int{"a": 2, "b": 3, "c": 50, "d": 1} {
		for i := range n {
			rels = append(rels, rel(fmt.Sprintf("doc:%s#viewer@user:u%03d", obj, i)))
		}
	}
	rev := write(t, e, rels...)
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	store := &countingReader{Reader: snap}
	c := readcache.New(readcache.Config{})
	r := c.Reader(store).(relationObjectsUpToReader)
	rows, err := r.QueryRelationObjectsUpTo(ctx, "doc", "viewer", []string{"d", "c", "a", "b", "x"}, storage.QueryOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(len(rows[0]), rows[0] == nil, len(rows[1]), rows[1] == nil, len(rows[2]), len(rows[3]), rows[4] == nil)
	// a and b whole; c cut by the budget; d and x beyond where it stopped.
	if want := "0 true 0 true 2 3 true"; got != want || store.rows > 10 {
		t.Fatalf("rows (len, left out) of d c a b x: %s, want %s; %d rows read, want at most 10", got, want, store.rows)
	}
	if st := c.Stats(); st.Entries != 2 {
		t.Fatalf("%+v: want a and b kept, nothing else", st)
	}
	// c's own query reads it whole: nothing of the cut batch was kept.
	if n := len(strs(t, c.Reader(store).QueryRelationships(ctx, storage.Filter{ResourceType: "doc", ResourceIDs: []string{"c"}, Relation: "viewer"}, storage.QueryOptions{}))); n != 50 {
		t.Fatalf("c's own query: %d rows, want 50", n)
	}
	if _, err := r.QueryRelationObjectsUpTo(ctx, "doc", "viewer", []string{"a"}, storage.QueryOptions{}, 0); err == nil {
		t.Fatal("a read without a budget was accepted")
	}
}

// TestKeptRowsHoldOnlyThemselves: QueryObjects copies each object's rows
// out of its batch's read before keeping them, so the heap the cache holds
// follows its byte bound. Were the entries views of the batch's array,
// one surviving object would keep its whole batch (rows and strings)
// alive, and batches whose objects leave at different times would hold
// many times the bound.
func TestKeptRowsHoldOnlyThemselves(t *testing.T) {
	const objects, batch, batches, budget = 20000, 64, 3000, 2 << 20
	e := openMemory(t)
	id := func(i int) string { return fmt.Sprintf("o%05d", i) }
	for start := 0; start < objects; start += 2000 {
		var rels []graph.Relationship
		for i := start; i < start+2000; i++ {
			for u := range 3 {
				rels = append(rels, rel(fmt.Sprintf("doc:%s#viewer@user:u%d", id(i), u)))
			}
		}
		write(t, e, rels...)
	}
	rev, err := e.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	// Read everything once beneath the cache, so the store's own block
	// cache is full before the heap is measured.
	if n := readAll(snap, storage.Filter{ResourceType: "doc"}, storage.QueryOptions{}); n != 3*objects {
		t.Fatalf("%d rows stored, want %d", n, 3*objects)
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC() // and the pools' victim caches
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	c := readcache.New(readcache.Config{MaxBytes: budget})
	r := c.Reader(snap).(objectsReader)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, batch)
	for range batches {
		start, step := rng.IntN(objects), 1+rng.IntN(objects/batch-1)
		for k := range ids {
			ids[k] = id((start + k*step) % objects)
		}
		if _, err := r.QueryObjects(ctx, "doc", ids, 32, storage.QueryOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	held := int64(heap()) - int64(before)
	s := c.Stats()
	runtime.KeepAlive(c)
	if s.Bytes > budget || s.Entries < 1000 {
		t.Fatalf("the cache estimates %d bytes in %d entries, want at most %d in at least 1,000", s.Bytes, s.Entries, budget)
	}
	if held > 2*budget {
		t.Fatalf("the cache holds %d bytes of heap for %d entries estimated at %d bytes (bound %d)", held, s.Entries, s.Bytes, budget)
	}
	t.Logf("%d entries estimated at %d bytes hold %d bytes of heap", s.Entries, s.Bytes, held)
}
