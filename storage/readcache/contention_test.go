package readcache

import (
	"fmt"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/relchanges"
)

// TestKeepingNeverWaitsForAShard: a result is kept only if its shard's
// lock is free at once; a read holding it makes the keep give up instead
// of waiting, and the next keep after the read stores the result. A read
// of many objects keeps each shard's results under one lock, and skips
// only the shards that are busy.
func TestKeepingNeverWaitsForAShard(t *testing.T) {
	c := New(Config{MaxBytes: 32 << 20})
	if len(c.shards) < 2 {
		t.Fatalf("%d shards, want several", len(c.shards))
	}
	const rev = storage.Revision(7)
	now := time.Unix(1000, 0)
	opts := storage.QueryOptions{Now: now}
	row := func(id string) []graph.Relationship {
		return []graph.Relationship{{Resource: graph.ObjectRef{Type: "doc", ID: id}, Relation: "viewer",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u"}}}}
	}
	key := func(id string) query {
		return query{key: "doc\x00" + id, rev: rev, scope: relchanges.Scope{Type: "doc", Relation: "viewer", ID: id}}
	}
	held := func(q query) bool {
		_, ok := c.get(q.key, q.rev, q.scope, now.UnixNano())
		return ok
	}

	// One result, its shard read-locked by a concurrent reader.
	q := key("one")
	_, sh := c.shard(q.key)
	sh.mu.RLock()
	kept := make(chan struct{})
	go func() {
		c.keep(q, opts, row("one"))
		close(kept)
	}()
	select {
	case <-kept:
	case <-time.After(10 * time.Second):
		t.Fatal("keeping a result waited for a shard a reader holds")
	}
	sh.mu.RUnlock()
	if held(q) {
		t.Fatal("a result kept while its shard was busy was stored")
	}
	c.keep(q, opts, row("one"))
	if !held(q) {
		t.Fatal("a result kept on a free shard was not stored")
	}

	// Many results at once, one shard busy.
	var batch []keptEntry
	var queries []query
	for i := range 200 {
		q := key(fmt.Sprint("d", i))
		e, ok := c.entryOf(q, opts, row(q.scope.ID))
		if !ok {
			t.Fatalf("%s: no entry to keep", q.key)
		}
		batch = append(batch, keptEntry{key: q.key, e: e})
		queries = append(queries, q)
	}
	_, busy := c.shard(queries[0].key)
	busy.mu.RLock()
	c.addAll(batch)
	busy.mu.RUnlock()
	for _, q := range queries {
		_, sh := c.shard(q.key)
		if want := sh != busy; held(q) != want {
			t.Errorf("%s (busy shard: %v) held: %v, want %v", q.key, sh == busy, held(q), want)
		}
	}
}
