package readcache_test

import (
	"fmt"
	"testing"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
	"github.com/pembadb/pemba/storage/readcache"
)

// BenchmarkSliceHit measures a cached one-object read, the read cache's
// hit path: the key is looked up by its bytes, so a hit allocates only
// the key buffer.
func BenchmarkSliceHit(b *testing.B) {
	e, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const groups = 1000
	var ms []storage.Mutation
	for i := range groups {
		ms = append(ms, storage.Mutation{Op: storage.OpTouch, Relationship: rel(fmt.Sprintf("group:g%d#member@user:u%d", i, i))})
	}
	rev, err := e.Write(ctx, storage.WriteRequest{Mutations: ms})
	if err != nil {
		b.Fatal(err)
	}
	snap, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		b.Fatal(err)
	}
	r := readcache.New(readcache.Config{}).Reader(snap).(sliceUpTo)
	ids := make([][]string, groups)
	for i := range ids {
		ids[i] = []string{fmt.Sprintf("g%d", i)}
	}
	read := func(i int) {
		rows, whole, err := r.QueryRelationshipSliceUpTo(ctx, storage.Filter{ResourceType: "group", ResourceIDs: ids[i%groups], Relation: "member"}, storage.QueryOptions{}, 100)
		if err != nil || !whole || len(rows) != 1 {
			b.Fatalf("read g%d: %d rows, whole %v, %v", i%groups, len(rows), whole, err)
		}
	}
	for i := range groups {
		read(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		read(i)
	}
}
