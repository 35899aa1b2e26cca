package sql

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pembadb/pemba/storage"
)

// BenchmarkWriteAuditCost measures what the audit log adds to
// BenchmarkWrite's writes on a machine whose load changes from second to
// second: two engines in one process, on two databases of one server, one
// with the audit log and one without, write in alternating chunks of
// 1000 writes, so both see the same load. The engine with the log runs
// its background indexer, as a server does, and indexes what is left of
// its chunk (IndexAudit) before the chunk's clock stops. Database CPU is
// counted per database, so exactly; client CPU is the process's, and
// takes in what the indexer does while the other engine writes. It
// reports both engines' wall time, database and client CPU and WAL bytes
// per write, and the ratios (on/off).
func BenchmarkWriteAuditCost(b *testing.B) {
	ctx := context.Background()
	const chunk = 1000
	type side struct {
		e                  *Engine
		guard              storage.Revision
		wall, db, client   time.Duration
		wal                int64 // bytes of WAL written during its chunks
		writes, nextWriteI int
	}
	open := func(cfg Config) *side {
		e := openConfig(b, pg.NewDatabase(b), cfg)
		guard, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}})
		if err != nil {
			b.Fatal(err)
		}
		return &side{e: e, guard: guard}
	}
	on, off := open(Config{}), open(Config{DisableAudit: true})
	meta := storage.WriteMetadata{Actor: "user:bench", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	// walPosition is the server's WAL insert position: the WAL written
	// during a chunk is the chunk's (and autovacuum's).
	walPosition := func(s *side) (pos int64) {
		if err := s.e.pool.QueryRow(ctx, "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint").Scan(&pos); err != nil {
			b.Fatal(err)
		}
		return pos
	}
	run := func(s *side, n int) {
		cpu := startCPU(b, s.e)
		wal := walPosition(s)
		start := time.Now()
		for range n {
			i := s.nextWriteI
			s.nextWriteI++
			r := rel("document", fmt.Sprintf("d%d", i), "viewer", "user", fmt.Sprintf("u%d", i%1000))
			if _, err := s.e.Write(ctx, storage.WriteRequest{SchemaRevision: s.guard, Metadata: meta,
				Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.e.IndexAudit(ctx); err != nil {
			b.Fatal(err)
		}
		s.wall += time.Since(start)
		s.wal += walPosition(s) - wal
		db, client := cpu.stop(b)
		s.db, s.client, s.writes = s.db+db, s.client+client, s.writes+n
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
	per := func(d time.Duration, s *side) float64 { return float64(d.Microseconds()) / float64(s.writes) }
	for _, x := range []struct {
		name string
		s    *side
	}{{"on", on}, {"off", off}} {
		b.ReportMetric(per(x.s.wall, x.s), x.name+"-µs/write")
		b.ReportMetric(per(x.s.db, x.s), x.name+"-db-cpu-µs/write")
		b.ReportMetric(per(x.s.client, x.s), x.name+"-client-cpu-µs/write")
		b.ReportMetric(float64(x.s.wal)/float64(x.s.writes), x.name+"-wal-B/write")
	}
	b.ReportMetric(float64(on.wall)/float64(off.wall), "wall-on/off")
	if off.db > 0 {
		b.ReportMetric(float64(on.db)/float64(off.db), "db-cpu-on/off")
	}
	b.ReportMetric(float64(on.client)/float64(off.client), "client-cpu-on/off")
}
