package audit_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/pembadb/pemba/audit"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// BenchmarkReadResource times one page of `pemba audit --resource` over a
// log of PEMBA_AUDIT_BENCH_ENTRIES single-relationship writes (default
// 100,000) spread over entries/10 documents, on the embedded engine:
//
//	PEMBA_AUDIT_BENCH_ENTRIES=10000000 go test ./audit -run '^$' -bench ReadResource -benchtime 200x -timeout 2h
//
// The log is built once per run, in a temporary directory.
func BenchmarkReadResource(b *testing.B) {
	entries := 100_000
	if s := os.Getenv("PEMBA_AUDIT_BENCH_ENTRIES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			b.Fatalf("PEMBA_AUDIT_BENCH_ENTRIES=%q: want a number >= 10", s)
		}
		entries = n
	}
	e, err := pebble.Open(pebble.Options{Dir: b.TempDir(), GCInterval: -1, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	docs := entries / 10
	rng := rand.New(rand.NewPCG(1, 2))
	// One import batch per relationship: one revision, one entry each.
	_, err = e.Import(ctx, func(yield func(graph.Relationship, error) bool) {
		for i := range entries {
			r := graph.Relationship{
				Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("doc-%d", rng.IntN(docs))},
				Relation: "viewer",
				Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("user-%d", i)}},
			}
			if !yield(r, nil) {
				return
			}
		}
	}, storage.ImportOptions{BatchSize: 1, Metadata: storage.WriteMetadata{Actor: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	// Measure reads of the index, not of an unindexed tail the
	// background indexer has not reached yet.
	if err := e.IndexAudit(ctx); err != nil {
		b.Fatal(err)
	}
	for _, newest := range []bool{false, true} {
		b.Run(fmt.Sprintf("entries=%d/newest_first=%v", entries, newest), func(b *testing.B) {
			events := 0
			for i := 0; b.Loop(); i++ {
				q := audit.Query{ResourceType: "document", ResourceID: fmt.Sprintf("doc-%d", i%docs), NewestFirst: newest, Limit: 100}
				for _, err := range audit.Read(ctx, e, q) {
					if err != nil {
						b.Fatal(err)
					}
					events++
				}
			}
			b.ReportMetric(float64(events)/float64(b.N), "events/op")
		})
	}
}
