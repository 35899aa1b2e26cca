package pebble

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/abtest"
	"github.com/pembadb/pemba/storage"

	"github.com/pembadb/pemba/internal/cputime"
)

// auditCostSide is one of the two on-disk engines an audit cost benchmark
// compares, with what it has measured so far.
type auditCostSide struct {
	name      string
	e         *Engine
	wall, cpu time.Duration
	units     int
	next      atomic.Int64
}

// newAuditCostPair opens two on-disk engines, one with the audit log
// ("on") and one without ("off").
func newAuditCostPair(b *testing.B) (on, off *auditCostSide) {
	open := func(name string, disable bool) *auditCostSide {
		e, err := Open(Options{Dir: b.TempDir(), GCInterval: -1, DisableAudit: disable})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		return &auditCostSide{name: name, e: e}
	}
	return open("on", false), open("off", true)
}

// measure runs work, which does units of work on s's engine, and adds its
// wall time and the process's CPU to s. The engine with the log finishes
// indexing the chunk (IndexAudit, besides its background indexer) before
// the clock stops, so the index's work is counted in its own chunks.
func (s *auditCostSide) measure(b *testing.B, units int, work func()) {
	cpu0, start := cputime.Process(), time.Now()
	work()
	if err := s.e.IndexAudit(context.Background()); err != nil {
		b.Fatal(err)
	}
	s.wall += time.Since(start)
	s.cpu += cputime.Process() - cpu0
	s.units += units
}

// reportAuditCost reports both sides' wall time and CPU per unit, and
// the ratios (on/off).
func reportAuditCost(b *testing.B, on, off *auditCostSide, unit string) {
	for _, s := range []*auditCostSide{on, off} {
		per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(s.units) }
		b.ReportMetric(per(s.wall), s.name+"-µs/"+unit)
		b.ReportMetric(per(s.cpu), s.name+"-cpu-µs/"+unit)
	}
	b.ReportMetric(float64(on.wall)/float64(off.wall), "wall-on/off")
	b.ReportMetric(float64(on.cpu)/float64(off.cpu), "cpu-on/off")
}

// BenchmarkWriteAuditCost measures what the audit log adds to
// BenchmarkWrite/writers=16 on a machine whose load changes from second
// to second: two on-disk engines in one process, one with the audit log
// and one without, take turns writing chunks of 4,000
// single-relationship writes from 16 writers, so both see the same load.
func BenchmarkWriteAuditCost(b *testing.B) {
	ctx := context.Background()
	const chunk, writers = 4000, 16
	on, off := newAuditCostPair(b)
	meta := storage.WriteMetadata{Actor: "user:alice", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		abtest.Round(done/chunk, on, off, func(s *auditCostSide) {
			s.measure(b, n, func() {
				var left atomic.Int64
				left.Store(int64(n))
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							i := s.next.Add(1)
							r := graph.Relationship{
								Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("doc%d", i)},
								Relation: "viewer",
								Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "alice"}},
							}
							if _, err := s.e.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		})
	}
	reportAuditCost(b, on, off, "write")
}

// BenchmarkImportAuditCost is BenchmarkWriteAuditCost for imports: each
// iteration imports 200,000 new relationships into both engines, in
// batches of 10,000, one engine after the other.
func BenchmarkImportAuditCost(b *testing.B) {
	ctx := context.Background()
	const n, batch = 200_000, 10_000
	on, off := newAuditCostPair(b)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		abtest.Round(i, on, off, func(s *auditCostSide) {
			s.measure(b, n, func() {
				res, err := s.e.Import(ctx, benchRelationshipsFrom(i*n, n), storage.ImportOptions{BatchSize: batch,
					Metadata: storage.WriteMetadata{Actor: "user:bench"}})
				if err != nil || res.Imported != n {
					b.Fatalf("import = %d, %v", res.Imported, err)
				}
			})
		})
	}
	reportAuditCost(b, on, off, "rel")
}
