package sql

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pembadb/pemba/internal/abtest"
	"github.com/pembadb/pemba/storage"
)

// auditCostSide is one of the two engines an audit cost benchmark
// compares, with what it has measured so far.
type auditCostSide struct {
	name             string
	e                *Engine
	guard            storage.Revision
	wall, db, client time.Duration
	wal              int64 // bytes of WAL written during its chunks
	units            int
}

// newAuditCostPair opens two engines on two databases of one server, one
// with the audit log ("on") and one without ("off"), each with a schema.
func newAuditCostPair(b *testing.B) (on, off *auditCostSide) {
	open := func(name string, cfg Config) *auditCostSide {
		e := openConfig(b, pg.NewDatabase(b), cfg)
		guard, err := e.WriteSchema(context.Background(), storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}\ndefinition document { relation viewer: user }"}})
		if err != nil {
			b.Fatal(err)
		}
		return &auditCostSide{name: name, e: e, guard: guard}
	}
	return open("on", Config{}), open("off", Config{DisableAudit: true})
}

// measure runs work, which does units of work on s's engine, and adds its
// wall time, CPU and WAL to s. The engine with the log runs its
// background indexer, as a server does, and indexes what is left of the
// chunk before the clock stops.
func (s *auditCostSide) measure(b *testing.B, units int, work func()) {
	ctx := context.Background()
	// walPosition is the server's WAL insert position: the WAL written
	// during a chunk is the chunk's (and autovacuum's).
	walPosition := func() (pos int64) {
		if err := s.e.pool.QueryRow(ctx, "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint").Scan(&pos); err != nil {
			b.Fatal(err)
		}
		return pos
	}
	cpu := startCPU(b, s.e)
	wal := walPosition()
	start := time.Now()
	work()
	if err := s.e.IndexAudit(ctx); err != nil {
		b.Fatal(err)
	}
	s.wall += time.Since(start)
	s.wal += walPosition() - wal
	db, client := cpu.stop(b)
	s.db, s.client, s.units = s.db+db, s.client+client, s.units+units
}

// reportAuditCost reports both sides' wall time, database and client CPU
// and WAL bytes per unit, and the ratios (on/off).
func reportAuditCost(b *testing.B, on, off *auditCostSide, unit string) {
	for _, s := range []*auditCostSide{on, off} {
		per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(s.units) }
		b.ReportMetric(per(s.wall), s.name+"-µs/"+unit)
		b.ReportMetric(per(s.db), s.name+"-db-cpu-µs/"+unit)
		b.ReportMetric(per(s.client), s.name+"-client-cpu-µs/"+unit)
		b.ReportMetric(float64(s.wal)/float64(s.units), s.name+"-wal-B/"+unit)
	}
	b.ReportMetric(float64(on.wall)/float64(off.wall), "wall-on/off")
	if off.db > 0 {
		b.ReportMetric(float64(on.db)/float64(off.db), "db-cpu-on/off")
	}
	b.ReportMetric(float64(on.client)/float64(off.client), "client-cpu-on/off")
}

// BenchmarkWriteAuditCost measures what the audit log adds to
// BenchmarkWrite's writes on a machine whose load changes from second to
// second: two engines in one process, on two databases of one server, one
// with the audit log and one without, write in alternating chunks of
// 1000 writes, so both see the same load. Database CPU is counted per
// database, so exactly; client CPU is the process's, and takes in what the
// indexer does while the other engine writes.
func BenchmarkWriteAuditCost(b *testing.B) {
	ctx := context.Background()
	const chunk = 1000
	on, off := newAuditCostPair(b)
	meta := storage.WriteMetadata{Actor: "user:bench", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	next := map[*auditCostSide]int{}
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		abtest.Round(done/chunk, on, off, func(s *auditCostSide) {
			s.measure(b, n, func() {
				for range n {
					i := next[s]
					next[s]++
					r := rel("document", fmt.Sprintf("d%d", i), "viewer", "user", fmt.Sprintf("u%d", i%1000))
					if _, err := s.e.Write(ctx, storage.WriteRequest{SchemaRevision: s.guard, Metadata: meta,
						Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
	reportAuditCost(b, on, off, "write")
}

// BenchmarkImportAuditCost is BenchmarkWriteAuditCost for imports: each
// iteration imports -import-size new relationships into both engines, in
// batches of -import-batch, one engine after the other.
func BenchmarkImportAuditCost(b *testing.B) {
	ctx := context.Background()
	on, off := newAuditCostPair(b)
	n := *benchImportSize
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		abtest.Round(i, on, off, func(s *auditCostSide) {
			s.measure(b, n, func() {
				res, err := s.e.Import(ctx, benchRelationshipsFrom(i*n, n), storage.ImportOptions{BatchSize: *benchImportBatch,
					Metadata: storage.WriteMetadata{Actor: "user:bench"}})
				if err != nil || res.Imported != n {
					b.Fatalf("import = %d, %v", res.Imported, err)
				}
			})
		})
	}
	reportAuditCost(b, on, off, "rel")
}
