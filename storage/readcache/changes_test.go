package readcache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
		snap, err := e.SnapshotReader(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		r := c.Reader(snap)
		return fmt.Sprint(strs(t, r.QueryRelationships(ctx, members, storage.QueryOptions{}))),
			fmt.Sprint(strs(t, r.QueryRelationships(ctx, viewers, storage.QueryOptions{}))),
			fmt.Sprint(strs(t, r.ReverseQueryRelationships(ctx, byUser, storage.QueryOptions{})))
	}
	r1 := write(t, e, rel("group:g#member@user:a"), rel("doc:1#viewer@user:a"))
	waitApplied(t, tr, r1)
	read(r1)
	if s := c.Stats(); s.Misses != 3 || s.Hits != 0 {
		t.Fatalf("stats after the first reads = %+v, want 3 misses", s)
	}
	r2 := write(t, e, rel("doc:1#viewer@user:b"))
	waitApplied(t, tr, r2)
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
