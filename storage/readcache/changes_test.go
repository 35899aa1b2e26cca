package readcache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/readcache"
	"github.com/pembadb/pemba/storage/relchanges"
	"github.com/pembadb/pemba/storage/storagetest"
)

// follow starts a tracker on e's change stream until the test ends.
func follow(t *testing.T, e storage.Engine) *relchanges.Tracker {
	t.Helper()
	tr := &relchanges.Tracker{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Follow(ctx, e, nil)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tr
}

// waitApplied waits until tr has applied rev.
func waitApplied(t *testing.T, tr *relchanges.Tracker, rev storage.Revision) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Wait(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// cachedAt returns e's snapshot at rev read through c.
func cachedAt(t *testing.T, e storage.Engine, c *readcache.Cache, rev storage.Revision) storage.Reader {
	t.Helper()
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	return c.Reader(snap)
}

// writeApplied writes rels to e and waits until tr has applied the write.
func writeApplied(t *testing.T, e storage.Engine, tr *relchanges.Tracker, rels ...graph.Relationship) storage.Revision {
	t.Helper()
	rev := write(t, e, rels...)
	waitApplied(t, tr, rev)
	return rev
}

// TestConformanceAcrossRevisions runs the suite with results served
// across revisions wherever the change stream says their relation did not
// change: every answer must still be the engine's own.
func TestConformanceAcrossRevisions(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Engine {
		e := openMemory(t)
		return cachedEngine{Engine: e, cache: readcache.New(readcache.Config{MaxRows: 8, Changes: follow(t, e)})}
	}, storagetest.WithTamper(tamper))
}

// TestServesUnchangedRelationsAcrossRevisions: a write to one relation
// leaves the cached results of the others servable at the new revision,
// and its own relation's results are read again.
func TestServesUnchangedRelationsAcrossRevisions(t *testing.T) {
	e := openMemory(t)
	tr := follow(t, e)
	c := readcache.New(readcache.Config{Changes: tr})
	members := storage.Filter{ResourceType: "group", ResourceIDs: []string{"g"}, Relation: "member"}
	viewers := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1"}, Relation: "viewer"}
	byUser := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"a"}}, ResourceType: "group", Relation: "member"}
	read := func(rev storage.Revision) (string, string, string) {
		t.Helper()
		r := cachedAt(t, e, c, rev)
		return fmt.Sprint(strs(t, r.QueryRelationships(ctx, members, storage.QueryOptions{}))),
			fmt.Sprint(strs(t, r.QueryRelationships(ctx, viewers, storage.QueryOptions{}))),
			fmt.Sprint(strs(t, r.ReverseQueryRelationships(ctx, byUser, storage.QueryOptions{})))
	}
	r1 := writeApplied(t, e, tr, rel("group:g#member@user:a"), rel("doc:1#viewer@user:a"))
	read(r1)
	if s := c.Stats(); s.Misses != 3 || s.Hits != 0 {
		t.Fatalf("stats after the first reads = %+v, want 3 misses", s)
	}
	r2 := writeApplied(t, e, tr, rel("doc:1#viewer@user:b"))
	m, v, b := read(r2)
	if m != "[group:g#member@user:a]" || v != "[doc:1#viewer@user:a doc:1#viewer@user:b]" || b != "[group:g#member@user:a]" {
		t.Fatalf("at revision %d: members %s, viewers %s, by user %s", r2, m, v, b)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 4 {
		t.Fatalf("stats after a write to doc#viewer = %+v, want the 2 group#member results served (2 hits) and doc#viewer read again", s)
	}
	// Reads at the older revision are served the newer results where
	// nothing changed between, and doc#viewer's own revision otherwise.
	m, v, _ = read(r1)
	if m != "[group:g#member@user:a]" || v != "[doc:1#viewer@user:a]" {
		t.Fatalf("at revision %d: members %s, viewers %s", r1, m, v)
	}
	// A revision the stream has not delivered is never served across.
	r3 := write(t, e, rel("group:g#member@user:c"))
	snap, err := e.SnapshotReader(ctx, r3)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(strs(t, c.Reader(snap).QueryRelationships(ctx, members, storage.QueryOptions{}))); got != "[group:g#member@user:a group:g#member@user:c]" {
		t.Fatalf("at revision %d: members %s", r3, got)
	}
}

// TestServesUnchangedObjectsAcrossRevisions: a write to one object's
// relation leaves the cached results of that relation's other objects
// servable at the new revision, whether read by resource or by subject,
// and the written object's results are read again.
func TestServesUnchangedObjectsAcrossRevisions(t *testing.T) {
	e := openMemory(t)
	tr := follow(t, e)
	c := readcache.New(readcache.Config{Changes: tr})
	doc1 := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"1"}, Relation: "viewer"}
	doc2 := storage.Filter{ResourceType: "doc", ResourceIDs: []string{"2"}, Relation: "viewer"}
	byA := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"a"}}, ResourceType: "doc", Relation: "viewer"}
	byB := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"b"}}, ResourceType: "doc", Relation: "viewer"}
	read := func(rev storage.Revision) string {
		t.Helper()
		r := cachedAt(t, e, c, rev)
		objects, err := r.(interface {
			QueryRelationObjects(context.Context, string, string, []string, storage.QueryOptions) ([][]graph.Relationship, error)
		}).QueryRelationObjects(ctx, "doc", "viewer", []string{"1", "2"}, storage.QueryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(strs(t, r.QueryRelationships(ctx, doc1, storage.QueryOptions{})),
			strs(t, r.QueryRelationships(ctx, doc2, storage.QueryOptions{})),
			strs(t, r.ReverseQueryRelationships(ctx, byA, storage.QueryOptions{})),
			strs(t, r.ReverseQueryRelationships(ctx, byB, storage.QueryOptions{})),
			len(objects[0]), len(objects[1]))
	}
	r1 := writeApplied(t, e, tr, rel("doc:1#viewer@user:a"), rel("doc:2#viewer@user:b"))
	read(r1)
	// The object query reads and keeps each object's rows under the key
	// of the object's own query, which then hits.
	if s := c.Stats(); s.Misses != 4 || s.Hits != 2 {
		t.Fatalf("stats after the first reads = %+v, want 4 misses (2 objects, 2 subjects) and 2 hits", s)
	}
	r2 := writeApplied(t, e, tr, rel("doc:1#viewer@user:c"))
	want := "[doc:1#viewer@user:a doc:1#viewer@user:c] [doc:2#viewer@user:b] [doc:1#viewer@user:a] [doc:2#viewer@user:b] 2 1"
	if got := read(r2); got != want {
		t.Fatalf("at revision %d: %s, want %s", r2, got, want)
	}
	// doc:2's rows (for the object query and its own) and both reverse
	// queries serve across: the write touched doc:1 and user:c. doc:1's
	// rows are read again by the object query, and its own query then
	// hits them at the new revision.
	if s := c.Stats(); s.Hits != 2+5 || s.Misses != 4+1 {
		t.Fatalf("stats after a write to doc:1#viewer = %+v, want 5 more hits and 1 more miss (doc:1)", s)
	}
}

// TestEmptyResultsAcrossRevisions: empty results, which a shard keeps in a
// table of their own, are served like any other: at their revision, and
// across writes to other objects of the relation, but not across a write
// that gives the object rows. An object query's cached empty result is
// "no rows", not "left out".
func TestEmptyResultsAcrossRevisions(t *testing.T) {
	e := openMemory(t)
	tr := follow(t, e)
	c := readcache.New(readcache.Config{Changes: tr})
	delegates := func(id string) storage.Filter {
		return storage.Filter{ResourceType: "user", ResourceIDs: []string{id}, Relation: "delegate"}
	}
	read := func(rev storage.Revision) string {
		t.Helper()
		r := cachedAt(t, e, c, rev)
		objects, err := r.(interface {
			QueryRelationObjectsUpTo(context.Context, string, string, []string, storage.QueryOptions, int) ([][]graph.Relationship, error)
		}).QueryRelationObjectsUpTo(ctx, "user", "delegate", []string{"a", "b"}, storage.QueryOptions{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(strs(t, r.QueryRelationships(ctx, delegates("a"), storage.QueryOptions{})),
			strs(t, r.QueryRelationships(ctx, delegates("b"), storage.QueryOptions{})),
			len(objects[0]), objects[0] == nil, len(objects[1]), objects[1] == nil)
	}
	r1 := writeApplied(t, e, tr, rel("doc:1#viewer@user:a"))
	if got, want := read(r1), "[] [] 0 false 0 false"; got != want {
		t.Fatalf("at revision %d: %s, want %s", r1, got, want)
	}
	if s := c.Stats(); s.Misses != 2 || s.Hits != 2 || s.Entries != 2 || s.Bytes != 2*36 {
		t.Fatalf("stats after the first reads = %+v, want 2 misses, 2 hits, 2 entries of 36 bytes", s)
	}
	// A write to user:c's delegates leaves both empty results servable.
	r2 := writeApplied(t, e, tr, rel("user:c#delegate@agent:x"))
	if got, want := read(r2), "[] [] 0 false 0 false"; got != want {
		t.Fatalf("at revision %d: %s, want %s", r2, got, want)
	}
	if s := c.Stats(); s.Misses != 2 || s.Hits != 6 {
		t.Fatalf("stats after a write to user:c = %+v, want 4 more hits", s)
	}
	// A write giving user:a a delegate: a's empty result no longer serves
	// the new revision, and still serves the old one.
	r3 := writeApplied(t, e, tr, rel("user:a#delegate@agent:y"))
	if got, want := read(r3), "[user:a#delegate@agent:y] [] 1 false 0 false"; got != want {
		t.Fatalf("at revision %d: %s, want %s", r3, got, want)
	}
	if got, want := read(r2), "[] [] 0 false 0 false"; got != want {
		t.Fatalf("at revision %d after the write: %s, want %s", r2, got, want)
	}
}
