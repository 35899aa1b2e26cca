package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pembadb/pemba/loadtest/dataset"
)

// Config describes one run.
type Config struct {
	// Endpoints are the gRPC addresses (host:port) of the servers to
	// measure: one, or several sharing a datastore, which each worker
	// sends its requests to in turn (see nodes.go). The data set is
	// loaded through the first.
	Endpoints []string
	// Token is the bearer token sent with every request ("" sends none).
	Token string
	// Plaintext connects without TLS.
	Plaintext bool
	// MetricsURLs are the servers' Prometheus endpoints (e.g.
	// http://localhost:8080/metrics), one per endpoint; their counters are
	// added up. None skips the server-side figures.
	MetricsURLs []string

	Dataset string
	Scale   float64
	// Seed chooses the graph.
	Seed uint64
	// SampleSeed chooses the requests; 0 picks one at random (reported),
	// so a repeated run against the same server does not replay requests
	// whose answers the server has cached.
	SampleSeed uint64
	// Workload is one of Workloads().
	Workload string
	// API is the API the workload's checks call: APIPemba ("" too) or
	// APISpiceDB, SpiceDB's authzed.api.v1 served by the same server, for
	// the check workloads. The data set is loaded through pemba.v1 either
	// way.
	API string
	// SubjectsPerResponse is how many subjects a pemba.v1 LookupSubjects
	// asks the server to pack into each response (0 or 1: one each, as
	// authzed.api.v1 always sends them).
	SubjectsPerResponse int
	Concurrency         int
	// Connections is the number of gRPC connections to each endpoint the
	// workers share (0: one per 8 workers, at most 4).
	Connections int
	Duration    time.Duration
	// RequestTimeout bounds each request (0: 10s); a request that runs
	// out of time counts as an error.
	RequestTimeout time.Duration
	// Warmup runs the workload this long, unrecorded, before measuring.
	Warmup time.Duration
	// SkipLoad reuses the data already on the server.
	SkipLoad bool
	// LoadOnly loads the data set and stops: no workload, no floor.
	LoadOnly bool
	// Progress receives progress bars; nil draws none.
	Progress io.Writer
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("endpoint: required")
	}
	for i, ep := range c.Endpoints {
		if ep == "" {
			return fmt.Errorf("endpoint %d of %d: empty", i+1, len(c.Endpoints))
		}
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency: must be at least 1, got %d", c.Concurrency)
	case c.Connections < 0:
		return fmt.Errorf("connections: must not be negative, got %d", c.Connections)
	case c.Duration <= 0:
		return fmt.Errorf("duration: must be positive, got %s", c.Duration)
	case c.RequestTimeout < 0:
		return fmt.Errorf("request timeout: must not be negative, got %s", c.RequestTimeout)
	case c.Warmup < 0:
		return fmt.Errorf("warmup: must not be negative, got %s", c.Warmup)
	case c.SubjectsPerResponse < 0 || c.SubjectsPerResponse > 1000:
		return fmt.Errorf("subjects per response: must be 0 to 1000, got %d", c.SubjectsPerResponse)
	}
	if c.LoadOnly && c.SkipLoad {
		return errors.New("load only and skip load: choose one")
	}
	if _, ok := workloads[c.Workload]; !ok {
		return fmt.Errorf("workload %q: unknown (known: %v)", c.Workload, Workloads())
	}
	switch c.API {
	case "", APIPemba:
	case APISpiceDB:
		if !c.LoadOnly && !slices.Contains(spicedbWorkloads, c.Workload) {
			return fmt.Errorf("api %s: drives the %s workloads only, not %s", APISpiceDB, strings.Join(spicedbWorkloads, ", "), c.Workload)
		}
	default:
		return fmt.Errorf("api %q: unknown (known: %s, %s)", c.API, APIPemba, APISpiceDB)
	}
	return nil
}

func (c Config) connections() int {
	if c.Connections > 0 {
		return c.Connections
	}
	return min(4, (c.Concurrency+7)/8)
}

// Run loads the data set (unless SkipLoad; only that with LoadOnly), runs
// the workload and then the two floors (health checks, then fully
// consistent one-relationship reads), each for Duration with Concurrency
// workers, and reports. It fails
// when the data set cannot be loaded or when every workload request
// failed; individual failures are counted in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	data, err := dataset.New(cfg.Dataset, dataset.Options{Scale: cfg.Scale, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	cl, err := dialCluster(cfg.Endpoints, cfg.connections(), cfg.Token, cfg.Plaintext)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.SampleSeed == 0 {
		cfg.SampleSeed = rand.Uint64() | 1
	}
	report := &Report{
		Dataset: cfg.Dataset, Scale: cfg.Scale, Seed: cfg.Seed, SampleSeed: cfg.SampleSeed,
		Workload: cfg.Workload, Concurrency: cfg.Concurrency, Seconds: cfg.Duration.Seconds(),
	}
	if cfg.API == APISpiceDB {
		report.API = APISpiceDB
	}
	if !cfg.SkipLoad {
		loader := load
		if cfg.API == APISpiceDB {
			loader = loadAuthzed
		}
		if report.Load, err = loader(ctx, cl.conns[0][0], data, cfg.Progress); err != nil {
			return nil, err
		}
		if cfg.LoadOnly {
			return report, nil
		}
	}

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		ne := data.NewEnemy(i)
		workers[i] = &worker{
			id: i, nodes: cl.workerClients(i), data: data, timeout: cfg.RequestTimeout, spicedb: cfg.API == APISpiceDB, subjectsPerResponse: cfg.SubjectsPerResponse,
			sampler: data.NewSampler(cfg.Seed<<16 + uint64(i)),
			enemy:   &ne,
		}
	}
	workload := workloads[cfg.Workload]
	metrics, warning := cfg.metricsURLs()
	if warning != "" {
		report.Warnings = append(report.Warnings, warning)
	}
	if len(metrics) > 0 {
		waited, warning, err := waitSettled(ctx, metrics)
		switch {
		case err != nil:
			report.Warnings = append(report.Warnings, err.Error())
		case warning != "":
			report.Warnings = append(report.Warnings, warning)
		}
		if waited >= time.Second {
			report.SettleWaitSeconds = waited.Seconds()
		}
	}
	if cfg.Warmup > 0 {
		runPhase(ctx, cfg, "warm-up", workers, cfg.Warmup, workload)
	}
	// The server-side figures are a bonus: a server whose metrics cannot
	// be reached is still measured, and the report says why they are
	// missing.
	var before, after counters
	if len(metrics) > 0 {
		if before, err = scrapeAll(ctx, metrics); err != nil {
			report.Warnings = append(report.Warnings, err.Error())
		}
	}
	elapsed := runPhase(ctx, cfg, cfg.Workload, workers, cfg.Duration, workload)
	if before != nil {
		if after, err = scrapeAll(ctx, metrics); err != nil {
			report.Warnings = append(report.Warnings, err.Error())
		}
	}
	report.Operations = Summarize(elapsed, recorders(workers)...)
	report.Nodes = nodeReports(cfg.Endpoints, workers, elapsed)
	if err := allFailed(report.Operations, workers); err != nil {
		return report, err
	}
	var checks int64
	for _, op := range report.Operations {
		switch op.Name {
		case opCheck:
			checks += op.Count
		case opBulkCheck:
			checks += op.Count * bulkCheckItems
		}
	}
	report.serverFigures(before, after, checks)
	var requests int64
	for _, op := range report.Operations {
		requests += op.Count
	}
	report.serverCPU(before, after, requests)
	for _, w := range workers {
		report.NewEnemyChecks += w.neChecks
		report.NewEnemyViolations += w.neViolations
		report.NewEnemyMissedGrants += w.neMissed
	}

	elapsed = runPhase(ctx, cfg, "floor (health check)", workers, cfg.Duration, (*worker).health)
	if floor := Summarize(elapsed, recorders(workers)...); len(floor) == 1 {
		report.Floor = &floor[0]
		report.FloorQPS = floor[0].QPS - float64(floor[0].Errors)/elapsed.Seconds()
	}
	elapsed = runPhase(ctx, cfg, "floor (one indexed read)", workers, cfg.Duration, (*worker).pointRead)
	if floor := Summarize(elapsed, recorders(workers)...); len(floor) == 1 {
		report.ReadFloor = &floor[0]
		report.ReadFloorQPS = floor[0].QPS - float64(floor[0].Errors)/elapsed.Seconds()
	}
	report.computeRatio()
	return report, ctx.Err()
}

func recorders(workers []*worker) []*Recorder {
	out := make([]*Recorder, len(workers))
	for i, w := range workers {
		out[i] = w.rec
	}
	return out
}

// allFailed returns an error carrying the first failure when no workload
// request succeeded: such a run measures nothing.
func allFailed(ops []Operation, workers []*worker) error {
	for _, op := range ops {
		if op.Count > op.Errors {
			return nil
		}
	}
	for _, w := range workers {
		if w.firstErr != nil {
			return fmt.Errorf("every request failed; the first: %w", w.firstErr)
		}
	}
	return errors.New("no request completed")
}

// runPhase runs step on every worker, closed-loop, for d, with fresh
// recorders, and returns the wall time until the last worker finished.
// A request in flight at the deadline completes (within the request
// timeout) and is counted.
func runPhase(ctx context.Context, cfg Config, name string, workers []*worker, d time.Duration, s step) time.Duration {
	var done atomic.Int64
	bar := newBar(cfg.Progress, int64(d/time.Second), name)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for _, w := range workers {
		w.resetRecorders()
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				s(w, ctx)
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	var tickers sync.WaitGroup
	tickers.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				secs := now.Sub(start).Seconds()
				bar.Describe(fmt.Sprintf("%s: %.0f req/s", name, float64(done.Load())/secs))
				bar.Set(int(secs))
			}
		}
	})
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	tickers.Wait()
	bar.Finish()
	return elapsed
}
