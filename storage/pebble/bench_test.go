package pebble

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"

	"github.com/pembadb/pemba/internal/cputime"
)

// benchRelationships yields n relationships over n/10 documents with ten
// viewers each, drawn from 10,000 users: the shape of a document store.
func benchRelationships(n int) iter.Seq2[graph.Relationship, error] {
	return benchRelationshipsFrom(0, n)
}

// benchRelationshipsFrom is relationships from..from+n of the sequence
// benchRelationships starts.
func benchRelationshipsFrom(from, n int) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for i := from; i < from+n; i++ {
			r := graph.Relationship{
				Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("doc%08d", i/10)},
				Relation: "viewer",
				Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("user%05d", (i*7919)%10000)}},
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// auditModes names the audit=on and audit=off sub-benchmarks: what the
// audit log costs.
var auditModes = []struct {
	name    string
	disable bool
}{{"audit=on", false}, {"audit=off", true}}

// BenchmarkImport imports relationships into a fresh on-disk store, one
// synced revision per batch, with the audit log on and off.
func BenchmarkImport(b *testing.B) {
	for _, c := range []struct{ n, batch int }{{200_000, 10_000}, {1_000_000, 10_000}, {1_000_000, 1_000}} {
		for _, mode := range auditModes {
			b.Run(fmt.Sprintf("rels=%d/batch=%d/%s", c.n, c.batch, mode.name), func(b *testing.B) {
				benchImport(b, c.n, c.batch, mode.disable)
			})
		}
	}
}

func benchImport(b *testing.B, n, batch int, disableAudit bool) {
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		e, err := Open(Options{Dir: b.TempDir(), GCInterval: -1, DisableAudit: disableAudit})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		cpu0 := cputime.Process()
		res, err := e.Import(context.Background(), benchRelationships(n), storage.ImportOptions{BatchSize: batch, Metadata: storage.WriteMetadata{Actor: "importer"}})
		if err != nil || res.Imported != n {
			b.Fatalf("import: %+v %v", res, err)
		}
		cpu += cputime.Process() - cpu0
		b.StopTimer()
		if err := e.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rels/s")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkPointQuery reads `document:X#viewer` (ten subjects) and the
// exact relationship `document:X#viewer@user:Y` at a snapshot of an
// on-disk store holding 1M relationships, reporting latency percentiles.
func BenchmarkPointQuery(b *testing.B) {
	const n = 1_000_000
	e, err := Open(Options{Dir: b.TempDir(), GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	res, err := e.Import(ctx, benchRelationships(n), storage.ImportOptions{BatchSize: 50_000, Metadata: storage.WriteMetadata{}})
	if err != nil {
		b.Fatal(err)
	}
	// Measure the steady state: compacted, with the forward index in the
	// block cache, not background compactions competing for the CPU.
	if err := e.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	rd, err := e.SnapshotReader(ctx, res.Revisions[len(res.Revisions)-1])
	if err != nil {
		b.Fatal(err)
	}
	for _, err := range rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{}) {
		if err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	b.Run("resource#relation", func(b *testing.B) {
		lat := make([]time.Duration, 0, 1<<20)
		i := 0
		cpu0 := cputime.Process()
		for b.Loop() {
			i++
			f := storage.Filter{ResourceType: "document", ResourceIDs: []string{fmt.Sprintf("doc%08d", (i*7)%(n/10))}, Relation: "viewer"}
			start := time.Now()
			got := 0
			for _, err := range rd.QueryRelationships(ctx, f, storage.QueryOptions{Now: now}) {
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			if len(lat) < cap(lat) {
				lat = append(lat, time.Since(start))
			}
			if got != 10 {
				b.Fatalf("%d results, want 10", got)
			}
		}
		b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		reportPercentiles(b, lat)
	})
	b.Run("exact", func(b *testing.B) {
		lat := make([]time.Duration, 0, 1<<20)
		i := 0
		cpu0 := cputime.Process()
		for b.Loop() {
			i++
			j := (i * 7) % n
			f := storage.Filter{ResourceType: "document", ResourceIDs: []string{fmt.Sprintf("doc%08d", j/10)}, Relation: "viewer",
				Subject: &storage.SubjectFilter{Type: "user", IDs: []string{fmt.Sprintf("user%05d", (j*7919)%10000)}}}
			start := time.Now()
			got := 0
			for _, err := range rd.QueryRelationships(ctx, f, storage.QueryOptions{Now: now}) {
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			if len(lat) < cap(lat) {
				lat = append(lat, time.Since(start))
			}
			if got != 1 {
				b.Fatalf("%d results, want 1", got)
			}
		}
		b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		reportPercentiles(b, lat)
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkWrite measures single-relationship writes on disk, each synced
// before it returns, from 1 and 16 concurrent writers (writers apply one
// at a time but share WAL syncs), with the audit log on and off.
func BenchmarkWrite(b *testing.B) {
	for _, writers := range []int{1, 16} {
		for _, mode := range auditModes {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, mode.name), func(b *testing.B) {
				benchWrite(b, writers, mode.disable)
			})
		}
	}
}

func benchWrite(b *testing.B, writers int, disableAudit bool) {
	e, err := Open(Options{Dir: b.TempDir(), GCInterval: -1, DisableAudit: disableAudit})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	var next atomic.Int64
	meta := storage.WriteMetadata{Actor: "user:alice", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	cpu0 := cputime.Process()
	b.SetParallelism((writers + 1) / 2) // GOMAXPROCS is 2 here
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			r := graph.Relationship{
				Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("doc%d", i)},
				Relation: "viewer",
				Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "alice"}},
			}
			if _, err := e.Write(context.Background(), storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}
