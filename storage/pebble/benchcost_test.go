package pebble

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"

	"github.com/pembadb/pemba/internal/cputime"
)

// BenchmarkWriteAuditCost measures what the audit log adds to
// BenchmarkWrite/writers=16 on a machine whose load changes from second
// to second: two on-disk engines in one process, one with the audit log
// and one without, take turns writing chunks of 4,000
// single-relationship writes from 16 writers, so both see the same load.
// The engine with the log finishes indexing its chunk (IndexAudit, besides
// its background indexer) before the chunk's clock stops, so the index's
// work is counted in its own chunks. It reports both engines' wall time and
// process CPU per write, and the ratios (on/off).
func BenchmarkWriteAuditCost(b *testing.B) {
	ctx := context.Background()
	const chunk, writers = 4000, 16
	type side struct {
		e         *Engine
		wall, cpu time.Duration
		writes    int
		next      atomic.Int64
	}
	open := func(disable bool) *side {
		e, err := Open(Options{Dir: b.TempDir(), GCInterval: -1, DisableAudit: disable})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close() })
		return &side{e: e}
	}
	on, off := open(false), open(true)
	meta := storage.WriteMetadata{Actor: "user:alice", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	run := func(s *side, n int) {
		cpu0, start := cputime.Process(), time.Now()
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
		if err := s.e.IndexAudit(ctx); err != nil {
			b.Fatal(err)
		}
		s.wall += time.Since(start)
		s.cpu += cputime.Process() - cpu0
		s.writes += n
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		// Alternate which goes first, so neither always follows the other.
		if (done/chunk)%2 == 0 {
			run(on, n)
			run(off, n)
		} else {
			run(off, n)
			run(on, n)
		}
	}
	per := func(d time.Duration, s *side) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(s.writes) }
	b.ReportMetric(per(on.wall, on), "on-µs/write")
	b.ReportMetric(per(on.cpu, on), "on-cpu-µs/write")
	b.ReportMetric(per(off.wall, off), "off-µs/write")
	b.ReportMetric(per(off.cpu, off), "off-cpu-µs/write")
	b.ReportMetric(float64(on.wall)/float64(off.wall), "wall-on/off")
	b.ReportMetric(float64(on.cpu)/float64(off.cpu), "cpu-on/off")
}
