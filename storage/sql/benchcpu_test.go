package sql

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/internal/cputime"
)

// cpuMeter measures the CPU time a benchmark costs: the database
// backends serving the benchmark's database, and this process. On a
// machine shared with other work, wall time per operation swings with the
// load; CPU time per operation hardly does, so it is what compares two
// variants. It reads /proc (Linux); elsewhere it reports nothing.
type cpuMeter struct {
	e       *Engine
	client  time.Duration
	backend map[int]time.Duration // pid → CPU time at the start
}

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

func startCPU(b *testing.B, e *Engine) *cpuMeter {
	b.Helper()
	m := &cpuMeter{e: e, client: cputime.Process(), backend: map[int]time.Duration{}}
	for _, pid := range backendPIDs(b, e) {
		m.backend[pid] = procCPU(pid)
	}
	return m
}

// stop returns the CPU time the database backends and this process have
// spent since startCPU (db is 0 when /proc cannot be read).
func (m *cpuMeter) stop(b *testing.B) (db, client time.Duration) {
	b.Helper()
	for _, pid := range backendPIDs(b, m.e) {
		if t := procCPU(pid); t >= 0 {
			db += t - m.backend[pid] // a backend started since counts from 0
		}
	}
	return db, cputime.Process() - m.client
}

// reportCPU adds db-cpu-µs/UNIT and client-cpu-µs/UNIT to the
// benchmark's results, for n units ("op", "rel").
func reportCPU(b *testing.B, db, client time.Duration, n int, unit string) {
	if n == 0 {
		return
	}
	if db > 0 {
		b.ReportMetric(float64(db.Microseconds())/float64(n), "db-cpu-µs/"+unit)
	}
	b.ReportMetric(float64(client.Microseconds())/float64(n), "client-cpu-µs/"+unit)
}

// backendPIDs lists the server processes connected to e's database.
func backendPIDs(b *testing.B, e *Engine) []int {
	b.Helper()
	rows, err := e.pool.Query(context.Background(), "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		b.Fatal(err)
	}
	return pids
}

// procCPU reads a process's user and system time, or -1.
func procCPU(pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: fields start
	// after its closing one; utime and stime are fields 14 and 15.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return -1
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}
