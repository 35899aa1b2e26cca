package sql

import (
	"context"
	"flag"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// The benchmarks need PostgreSQL (they skip without it) and are sized by
// flags so that `make bench` stays short; BENCHMARKS.md gives the command
// for the full-size runs.
var (
	benchImportSize  = flag.Int("import-size", 100_000, "relationships BenchmarkImport writes per iteration")
	benchImportBatch = flag.Int("import-batch", 10_000, "batch size of BenchmarkImport")
)

// benchRelationships yields n relationships over 1000 users, spread over
// documents ten viewers apiece.
func benchRelationships(n int) iter.Seq2[graph.Relationship, error] {
	return benchRelationshipsFrom(0, n)
}

// benchRelationshipsFrom is relationships from..from+n of the sequence
// benchRelationships starts.
func benchRelationshipsFrom(from, n int) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for i := from; i < from+n; i++ {
			r := graph.Relationship{
				Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("doc%07d", i/10)},
				Relation: "viewer",
				Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", i%1000)}},
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// auditModes runs a benchmark with the audit log on and off.
func auditModes(b *testing.B, bench func(b *testing.B, cfg Config)) {
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("audit=%s", map[bool]string{true: "on", false: "off"}[on]), func(b *testing.B) {
			bench(b, Config{DisableAudit: !on})
		})
	}
}

// BenchmarkImport imports -import-size relationships into an empty
// database per iteration, in batches of -import-batch.
func BenchmarkImport(b *testing.B) { auditModes(b, benchImport) }

func benchImport(b *testing.B, cfg Config) {
	ctx := context.Background()
	n := *benchImportSize
	var elapsed, dbCPU, clientCPU time.Duration
	for b.Loop() {
		b.StopTimer()
		e := openConfig(b, pg.NewDatabase(b), cfg)
		cpu := startCPU(b, e)
		b.StartTimer()
		start := time.Now()
		res, err := e.Import(ctx, benchRelationships(n), storage.ImportOptions{BatchSize: *benchImportBatch, Metadata: storage.WriteMetadata{Actor: "bench"}})
		elapsed += time.Since(start)
		if err != nil || res.Imported != n {
			b.Fatalf("import = %d, %v", res.Imported, err)
		}
		b.StopTimer()
		db, client := cpu.stop(b)
		dbCPU, clientCPU = dbCPU+db, clientCPU+client
		e.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "rels/s")
	reportCPU(b, dbCPU, clientCPU, n*b.N, "rel")
}

// BenchmarkWrite runs b.N single-relationship TOUCH writes one after
// another, each guarded by the schema and carrying an actor and a label,
// as writes through the server do: the latency of one write.
func BenchmarkWrite(b *testing.B) { auditModes(b, benchWrite) }

func benchWrite(b *testing.B, cfg Config) {
	ctx := context.Background()
	e := openConfig(b, pg.NewDatabase(b), cfg)
	guard, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}})
	if err != nil {
		b.Fatal(err)
	}
	meta := storage.WriteMetadata{Actor: "user:bench", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	i := 0
	cpu := startCPU(b, e)
	start := time.Now()
	for b.Loop() {
		r := rel("document", fmt.Sprintf("d%d", i), "viewer", "user", fmt.Sprintf("u%d", i%1000))
		if _, err := e.Write(ctx, storage.WriteRequest{SchemaRevision: guard, Metadata: meta,
			Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	db, client := cpu.stop(b)
	reportCPU(b, db, client, b.N, "op")
}

// BenchmarkPointQuery reads one resource#relation (ten subjects) at a
// snapshot of 100k relationships.
func BenchmarkPointQuery(b *testing.B) {
	ctx := context.Background()
	e := openTest(b)
	const n = 100_000
	res, err := e.Import(ctx, benchRelationships(n), storage.ImportOptions{BatchSize: 10_000, Metadata: storage.WriteMetadata{}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "ANALYZE relationships"); err != nil {
		b.Fatal(err)
	}
	r, err := e.SnapshotReader(ctx, res.Revisions[len(res.Revisions)-1])
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	var latencies []time.Duration
	for b.Loop() {
		start := time.Now()
		f := storage.Filter{ResourceType: "document", ResourceIDs: []string{fmt.Sprintf("doc%07d", i%(n/10))}, Relation: "viewer"}
		got := 0
		for _, err := range r.QueryRelationships(ctx, f, storage.QueryOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != 10 {
			b.Fatalf("%d results, want 10", got)
		}
		latencies = append(latencies, time.Since(start))
		i++
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkConcurrentWriters runs b.N single-relationship TOUCH writes
// from 8 concurrent writers: the revision counter's ceiling. "guarded"
// writes carry a schema guard, as every write through the server does.
func BenchmarkConcurrentWriters(b *testing.B) {
	auditModes(b, func(b *testing.B, cfg Config) {
		b.Run("unguarded", func(b *testing.B) { benchConcurrentWriters(b, cfg, false) })
		b.Run("guarded", func(b *testing.B) { benchConcurrentWriters(b, cfg, true) })
	})
}

func benchConcurrentWriters(b *testing.B, cfg Config, guarded bool) {
	ctx := context.Background()
	e := openConfig(b, pg.NewDatabase(b), cfg)
	var guard storage.Revision
	if guarded {
		var err error
		if guard, err = e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}}); err != nil {
			b.Fatal(err)
		}
	}
	const writers = 8
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				rel := graph.Relationship{
					Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("d%d", i)},
					Relation: "viewer",
					Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("w%d", w)}},
				}
				if _, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel}},
					SchemaRevision: guard}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}
