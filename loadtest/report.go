package loadtest

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: latencies are recorded in microseconds, from 1 µs to
// one hour, with three significant digits (values below 2048 µs are exact;
// above, the error is under 0.1%).
const (
	histMinMicros = 1
	histMaxMicros = int64(time.Hour / time.Microsecond)
	histSigFigs   = 3
)

// Recorder accumulates one worker's request latencies per operation. It is
// not safe for concurrent use: each worker owns one, and Summarize merges
// them after the workers stop, so recording never contends on a lock.
type Recorder struct {
	ops map[string]*opStats
}

// opStats is one operation's tally within one Recorder.
type opStats struct {
	hist   *hdrhistogram.Histogram
	errors int64
	// firstError is the first failure's message, for the report.
	firstError string
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{ops: map[string]*opStats{}} }

// Record adds one request of operation op that took d; a failed request
// (err != nil) counts as an error and its latency is recorded too, since a
// slow failure is still a slow request.
func (r *Recorder) Record(op string, d time.Duration, err error) {
	s := r.ops[op]
	if s == nil {
		s = &opStats{hist: hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)}
		r.ops[op] = s
	}
	us := max(d.Microseconds(), histMinMicros)
	_ = s.hist.RecordValue(min(us, histMaxMicros)) // clamped, so never out of range
	if err != nil {
		s.errors++
		if s.firstError == "" {
			s.firstError = err.Error()
		}
	}
}

// Operation is the summary of one operation over a run.
type Operation struct {
	Name   string  `json:"name"`
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	QPS    float64 `json:"qps"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	// FirstError is one failure's message when Errors > 0.
	FirstError string `json:"first_error,omitempty"`
}

// Summarize merges the recorders and summarizes each operation over
// elapsed, in name order.
func Summarize(elapsed time.Duration, recorders ...*Recorder) []Operation {
	merged := map[string]*opStats{}
	for _, r := range recorders {
		for name, s := range r.ops {
			m := merged[name]
			if m == nil {
				m = &opStats{hist: hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)}
				merged[name] = m
			}
			m.hist.Merge(s.hist)
			m.errors += s.errors
			if m.firstError == "" {
				m.firstError = s.firstError
			}
		}
	}
	names := make([]string, 0, len(merged))
	for n := range merged {
		names = append(names, n)
	}
	sort.Strings(names)
	ops := make([]Operation, 0, len(names))
	for _, n := range names {
		ops = append(ops, summarize(n, merged[n], elapsed))
	}
	return ops
}

func summarize(name string, s *opStats, elapsed time.Duration) Operation {
	ms := func(q float64) float64 { return float64(s.hist.ValueAtQuantile(q)) / 1000 }
	op := Operation{
		Name:   name,
		Count:  s.hist.TotalCount(),
		Errors: s.errors,
		P50Ms:  ms(50),
		P90Ms:  ms(90),
		P99Ms:  ms(99),
		P999Ms: ms(99.9),
		MaxMs:  float64(s.hist.Max()) / 1000,

		FirstError: s.firstError,
	}
	if elapsed > 0 {
		op.QPS = float64(op.Count) / elapsed.Seconds()
	}
	return op
}

// Report is the outcome of one run; its JSON form is what --json writes.
type Report struct {
	Dataset    string  `json:"dataset"`
	Scale      float64 `json:"scale"`
	Seed       uint64  `json:"seed"`
	SampleSeed uint64  `json:"sample_seed"`
	Workload   string  `json:"workload"`
	// API is APISpiceDB when the checks went through authzed.api.v1.
	API         string  `json:"api,omitempty"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"duration_seconds"`
	// Load is the import, when this run loaded the data set.
	Load *Load `json:"load,omitempty"`
	// SettleWaitSeconds is how long the run waited, before measuring, for
	// the servers to settle after the writes before it: their
	// reachability indexes to apply every write and the warming of their
	// shared subject sets to end (0 when they had, or when no metrics
	// were scraped).
	SettleWaitSeconds float64 `json:"settle_wait_seconds,omitempty"`
	// Operations are the workload's requests; Floor is the health-check
	// run, ReadFloor the run of fully consistent reads of one
	// relationship (one indexed datastore read each).
	Operations   []Operation `json:"operations"`
	Floor        *Operation  `json:"floor,omitempty"`
	FloorQPS     float64     `json:"floor_qps"`
	ReadFloor    *Operation  `json:"read_floor,omitempty"`
	ReadFloorQPS float64     `json:"read_floor_qps"`
	// RatioToFloor and RatioToReadFloor are the workload's check rate
	// divided by FloorQPS and ReadFloorQPS.
	RatioToFloor     float64 `json:"ratio_to_floor"`
	RatioToReadFloor float64 `json:"ratio_to_read_floor"`
	// Nodes are the workload's operations per endpoint, in the order the
	// endpoints were given, for a run on several (absent for one).
	Nodes []NodeReport `json:"nodes,omitempty"`
	// CacheHitRatio and DispatchesPerCheck come from the server's /metrics
	// over the workload; null when the server does not expose them.
	CacheHitRatio      *float64 `json:"cache_hit_ratio"`
	DispatchesPerCheck *float64 `json:"dispatches_per_check"`
	// ReadCacheHitRatio is the share of the query engine's relationship
	// reads served from its read cache; DatastoreQueriesPerCheck the reads
	// that went to the datastore, per check (lookups' and expands' reads
	// included, as for dispatches).
	ReadCacheHitRatio        *float64 `json:"read_cache_hit_ratio"`
	DatastoreQueriesPerCheck *float64 `json:"datastore_queries_per_check"`
	// ServerCPUMsPerRequest is the server process's CPU time over the
	// workload divided by its requests (every operation).
	ServerCPUMsPerRequest *float64 `json:"server_cpu_ms_per_request"`
	// NewEnemyChecks counts checks made with a revoke's zookie;
	// NewEnemyViolations those that still granted (must be 0). Both
	// include the warm-up, so no violation goes unreported.
	NewEnemyChecks     int64 `json:"new_enemy_checks"`
	NewEnemyViolations int64 `json:"new_enemy_violations"`
	// NewEnemyMissedGrants counts checks carrying a grant's zookie that
	// did not grant: stale too, though harmless to security.
	NewEnemyMissedGrants int64 `json:"new_enemy_missed_grants"`
	// Warnings say what the run could not measure (e.g. /metrics
	// unreachable).
	Warnings []string `json:"warnings,omitempty"`
}

// Load summarizes an import.
type Load struct {
	Relationships int64   `json:"relationships"`
	Seconds       float64 `json:"seconds"`
	PerSecond     float64 `json:"per_second"`
}

// checkOps are the operations whose rate is compared with the floor:
// single checks (a bulk check does the work of many, so its request rate
// is not comparable).
var checkOps = map[string]bool{opCheck: true}

// computeRatio sets RatioToFloor and RatioToReadFloor from the check
// operations and the floors.
func (r *Report) computeRatio() {
	var qps float64
	for _, op := range r.Operations {
		if checkOps[op.Name] {
			qps += op.QPS
		}
	}
	if r.FloorQPS > 0 {
		r.RatioToFloor = qps / r.FloorQPS
	}
	if r.ReadFloorQPS > 0 {
		r.RatioToReadFloor = qps / r.ReadFloorQPS
	}
}

// workloadName is the workload, with the API its checks called when
// that was not pemba.v1.
func (r *Report) workloadName() string {
	if r.API == APISpiceDB {
		return r.Workload + " (authzed.api.v1)"
	}
	return r.Workload
}

// LoadText is the report's line on the load ("" without one).
func (r *Report) LoadText() string {
	if r.Load == nil {
		return ""
	}
	return fmt.Sprintf("loaded %d relationships in %.1fs (%.0f/s)\n", r.Load.Relationships, r.Load.Seconds, r.Load.PerSecond)
}

// Text renders the report for a terminal.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dataset %s ×%g (seed %d), workload %s (sample seed %d), concurrency %d, %gs\n",
		r.Dataset, r.Scale, r.Seed, r.workloadName(), r.SampleSeed, r.Concurrency, r.Seconds)
	b.WriteString(r.LoadText())
	if r.SettleWaitSeconds > 0 {
		fmt.Fprintf(&b, "settling: waited %.1fs for the reachability index to apply every write and the shared subject sets to be warmed before measuring\n", r.SettleWaitSeconds)
	}
	fmt.Fprintf(&b, "%-18s %10s %7s %10s %9s %9s %9s %9s %9s\n", "operation", "count", "errors", "qps", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
	row := func(op Operation) {
		fmt.Fprintf(&b, "%-18s %10d %7d %10.0f %9.3f %9.3f %9.3f %9.3f %9.3f\n",
			op.Name, op.Count, op.Errors, op.QPS, op.P50Ms, op.P90Ms, op.P99Ms, op.P999Ms, op.MaxMs)
	}
	for _, op := range r.Operations {
		row(op)
	}
	for _, op := range r.Operations {
		if op.FirstError != "" {
			fmt.Fprintf(&b, "%s errors, e.g.: %s\n", op.Name, op.FirstError)
		}
	}
	if r.Floor != nil {
		row(*r.Floor)
	}
	if r.ReadFloor != nil {
		row(*r.ReadFloor)
	}
	if r.RatioToFloor > 0 {
		fmt.Fprintf(&b, "checks / floor: %.1f%%\n", 100*r.RatioToFloor)
	}
	if r.RatioToReadFloor > 0 {
		fmt.Fprintf(&b, "checks / read floor: %.1f%%\n", 100*r.RatioToReadFloor)
	}
	r.nodesText(&b)
	if r.CacheHitRatio != nil {
		fmt.Fprintf(&b, "server cache hit ratio: %.1f%%\n", 100**r.CacheHitRatio)
	}
	if r.DispatchesPerCheck != nil {
		fmt.Fprintf(&b, "server dispatches per check: %.1f\n", *r.DispatchesPerCheck)
	}
	if r.ReadCacheHitRatio != nil {
		fmt.Fprintf(&b, "server read cache hit ratio: %.1f%%\n", 100**r.ReadCacheHitRatio)
	}
	if r.DatastoreQueriesPerCheck != nil {
		fmt.Fprintf(&b, "server datastore queries per check: %.2f\n", *r.DatastoreQueriesPerCheck)
	}
	if r.ServerCPUMsPerRequest != nil {
		fmt.Fprintf(&b, "server CPU per request: %.3f ms\n", *r.ServerCPUMsPerRequest)
	}
	if r.Workload == WorkloadNewEnemy {
		fmt.Fprintf(&b, "new-enemy: %d checks with a revoke's zookie, %d violations; %d missed grants\n",
			r.NewEnemyChecks, r.NewEnemyViolations, r.NewEnemyMissedGrants)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

// nodesText renders the per-node rows of a run on several endpoints.
func (r *Report) nodesText(b *strings.Builder) {
	if len(r.Nodes) == 0 {
		return
	}
	width := len("node")
	for _, n := range r.Nodes {
		width = max(width, len(n.Endpoint))
	}
	fmt.Fprintf(b, "%-*s %-18s %10s %7s %10s %9s %9s %9s %9s %9s\n", width, "node", "operation", "count", "errors", "qps",
		"p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
	for _, n := range r.Nodes {
		for _, op := range n.Operations {
			fmt.Fprintf(b, "%-*s %-18s %10d %7d %10.0f %9.3f %9.3f %9.3f %9.3f %9.3f\n", width, n.Endpoint,
				op.Name, op.Count, op.Errors, op.QPS, op.P50Ms, op.P90Ms, op.P99Ms, op.P999Ms, op.MaxMs)
		}
	}
}

// MarkdownHeader is the header of the table Markdown rows belong to.
const MarkdownHeader = "| dataset | workload | conc. | operation | count | errors | QPS | p50 ms | p90 ms | p99 ms | p99.9 ms | % of floor | % of read floor | cache hits | dispatches/check | datastore reads/check |\n" +
	"| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"

// Markdown renders the report as rows of the BENCHMARKS.md table (see
// MarkdownHeader): one per operation, then the floor.
func (r *Report) Markdown() string {
	var b strings.Builder
	hits, dispatches, reads := "–", "–", "–"
	if r.CacheHitRatio != nil {
		hits = fmt.Sprintf("%.0f%%", 100**r.CacheHitRatio)
	}
	if r.DispatchesPerCheck != nil {
		dispatches = fmt.Sprintf("%.1f", *r.DispatchesPerCheck)
	}
	if r.DatastoreQueriesPerCheck != nil {
		reads = fmt.Sprintf("%.2f", *r.DatastoreQueriesPerCheck)
	}
	row := func(op Operation, ofFloor, ofReadFloor, hits, dispatches, reads string) {
		fmt.Fprintf(&b, "| %s ×%g | %s | %d | %s | %d | %d | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s | %s |\n",
			r.Dataset, r.Scale, r.workloadName(), r.Concurrency, op.Name, op.Count, op.Errors, op.QPS,
			op.P50Ms, op.P90Ms, op.P99Ms, op.P999Ms, ofFloor, ofReadFloor, hits, dispatches, reads)
	}
	share := func(qps, floor float64) string {
		if floor <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f%%", 100*qps/floor)
	}
	for _, op := range r.Operations {
		ofFloor, ofReadFloor := "–", "–"
		if checkOps[op.Name] {
			ofFloor, ofReadFloor = share(op.QPS, r.FloorQPS), share(op.QPS, r.ReadFloorQPS)
		}
		row(op, ofFloor, ofReadFloor, hits, dispatches, reads)
	}
	if r.Floor != nil {
		row(*r.Floor, "100%", "–", "–", "–", "–")
	}
	if r.ReadFloor != nil {
		row(*r.ReadFloor, "–", "100%", "–", "–", "–")
	}
	return b.String()
}
