package loadtest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/loadtest"
	"github.com/pembadb/pemba/server"
	"github.com/pembadb/pemba/storage/pebble"
)

// startServer serves an in-memory datastore on loopback and returns the
// gRPC address and the /metrics URL.
func startServer(t *testing.T) (grpcAddr, metricsURL string) {
	t.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	token, err := server.ParseToken("loadtest=loadtest-secret")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Engine:   engine,
		Tokens:   []server.Token{token},
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv.Addr().String(), "http://" + srv.HTTPAddr().String() + "/metrics"
}

// TestRunAgainstServer loads nested-org into a real server over gRPC and
// runs each workload briefly. It asserts what a run must always get right
// — requests succeed, every figure is reported, no new-enemy violation —
// and nothing about speed.
func TestRunAgainstServer(t *testing.T) {
	addr, metrics := startServer(t)
	base := loadtest.Config{
		Endpoints: []string{addr}, Token: "loadtest-secret", Plaintext: true, MetricsURLs: []string{metrics},
		Dataset: "nested-org", Scale: 1, Seed: 1,
		Concurrency: 2, Duration: 300 * time.Millisecond,
	}
	workloads := loadtest.Workloads()
	if testing.Short() {
		workloads = []string{loadtest.WorkloadMixed, loadtest.WorkloadNewEnemy}
	}
	for i, name := range workloads {
		t.Run(name, func(t *testing.T) {
			cfg := base
			switch name {
			case loadtest.WorkloadLookupSubjects:
				// Lookups of two subjects or more are "big" here, and
				// their subjects arrive packed into one response: the
				// per-1k row needs them counted one by one.
				defer loadtest.SetBigAnswer(2)()
				cfg.SubjectsPerResponse = 1000
			case loadtest.WorkloadExpand:
				// nested-org's trees are smaller than 1,000 nodes.
				defer loadtest.SetBigAnswer(2)()
			}
			cfg.Workload = name
			cfg.SkipLoad = i > 0
			var progress bytes.Buffer
			if i == 0 {
				cfg.Progress = &progress
			}
			r, err := loadtest.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if r.Load == nil || r.Load.Relationships != 10098 {
					t.Errorf("load = %+v, want 10098 relationships", r.Load)
				}
				if !strings.Contains(progress.String(), "loading nested-org") {
					t.Errorf("no loading progress bar drawn: %q", progress.String())
				}
			}
			if len(r.Operations) == 0 {
				t.Fatal("no operations recorded")
			}
			for _, op := range r.Operations {
				if op.Count == 0 || op.Errors > 0 {
					t.Errorf("%s: %d requests, %d errors (%s)", op.Name, op.Count, op.Errors, op.FirstError)
				}
			}
			if r.Floor == nil || r.FloorQPS <= 0 || r.Floor.Errors > 0 {
				t.Errorf("floor = %+v", r.Floor)
			}
			if r.ReadFloor == nil || r.ReadFloorQPS <= 0 || r.ReadFloor.Errors > 0 || r.ReadFloor.Name != "point-read" {
				t.Errorf("read floor = %+v", r.ReadFloor)
			}
			if len(r.Warnings) > 0 {
				t.Errorf("warnings: %v", r.Warnings)
			}
			switch name {
			case loadtest.WorkloadNewEnemy:
				if r.NewEnemyChecks == 0 || r.NewEnemyViolations != 0 || r.NewEnemyMissedGrants != 0 {
					t.Errorf("new-enemy: %d checks, %d violations, %d missed grants",
						r.NewEnemyChecks, r.NewEnemyViolations, r.NewEnemyMissedGrants)
				}
			case loadtest.WorkloadAccessWho, loadtest.WorkloadAccessWhat:
				names := map[string]bool{}
				for _, op := range r.Operations {
					names[op.Name] = true
				}
				if !names[name] || !names[name+"-first-row"] {
					t.Errorf("%s: operations %v, want %s and %s-first-row", name, names, name, name)
				}
			case loadtest.WorkloadLookupSubjects:
				ops := map[string]loadtest.Operation{}
				for _, op := range r.Operations {
					ops[op.Name] = op
				}
				all, per1k := ops["lookup-subjects"], ops["lookup-subjects-per-1k"]
				if per1k.Count == 0 || per1k.Count > all.Count || per1k.P50Ms <= 0 {
					t.Errorf("lookup-subjects-per-1k = %+v beside %d lookups, want a time for each that found a subject", per1k, all.Count)
				}
			case loadtest.WorkloadExpand:
				ops := map[string]loadtest.Operation{}
				for _, op := range r.Operations {
					ops[op.Name] = op
				}
				all, per1k := ops["expand"], ops["expand-per-1k"]
				if per1k.Count == 0 || per1k.Count > all.Count || per1k.P50Ms <= 0 || per1k.P50Ms >= all.P99Ms*500 {
					t.Errorf("expand-per-1k = %+v beside %+v, want a time per 1,000 nodes for each tree of two nodes or more", per1k, all)
				}
			case loadtest.WorkloadCheckRandom, loadtest.WorkloadCheckHot:
				// The read cache hit ratio stays nil when every check was
				// answered from the result cache and nothing was read.
				if r.RatioToFloor <= 0 || r.CacheHitRatio == nil || r.DispatchesPerCheck == nil || r.DatastoreQueriesPerCheck == nil {
					t.Errorf("ratio %v, cache hit ratio %v, dispatches per check %v, read cache hit ratio %v, datastore queries per check %v",
						r.RatioToFloor, r.CacheHitRatio, r.DispatchesPerCheck, r.ReadCacheHitRatio, r.DatastoreQueriesPerCheck)
				}
			}
			t.Logf("\n%s", r.Text())
		})
	}
}

// TestRunThroughSpiceDBAPI loads the data set and runs the read workloads
// through authzed.api.v1 on the same server: the load imports every
// relationship (in several imports), every request succeeds and the
// report names the API.
func TestRunThroughSpiceDBAPI(t *testing.T) {
	addr, metrics := startServer(t)
	for i, name := range []string{loadtest.WorkloadCheckRandom, loadtest.WorkloadCheckHot, loadtest.WorkloadLookupResources,
		loadtest.WorkloadLookupSubjects, loadtest.WorkloadRead} {
		r, err := loadtest.Run(context.Background(), loadtest.Config{
			Endpoints: []string{addr}, Token: "loadtest-secret", Plaintext: true, MetricsURLs: []string{metrics},
			Dataset: "nested-org", Scale: 1, Seed: 1, Workload: name, API: loadtest.APISpiceDB,
			Concurrency: 2, Duration: 300 * time.Millisecond, SkipLoad: i > 0,
		})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (r.Load == nil || r.Load.Relationships != 10098) {
			t.Errorf("load through the SpiceDB API: %+v, want 10,098 relationships", r.Load)
		}
		if len(r.Operations) != 1 || r.Operations[0].Count == 0 || r.Operations[0].Errors > 0 {
			t.Errorf("%s: operations %+v", name, r.Operations)
		}
		if r.API != loadtest.APISpiceDB || !strings.Contains(r.Text(), name+" (authzed.api.v1)") {
			t.Errorf("%s: report does not name the API:\n%s", name, r.Text())
		}
	}
	_, err := loadtest.Run(context.Background(), loadtest.Config{Endpoints: []string{addr}, Dataset: "nested-org", Scale: 1,
		Workload: loadtest.WorkloadMixed, API: loadtest.APISpiceDB, Concurrency: 1, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "api spicedb") {
		t.Errorf("mixed through the SpiceDB API: %v, want a refusal", err)
	}
}

// TestRunReportsUnauthenticated checks that a wrong token fails the run
// with the server's reason rather than producing a report of errors.
func TestRunReportsUnauthenticated(t *testing.T) {
	addr, _ := startServer(t)
	_, err := loadtest.Run(context.Background(), loadtest.Config{
		Endpoints: []string{addr}, Token: "wrong", Plaintext: true,
		Dataset: "nested-org", Scale: 1, Seed: 1, Workload: loadtest.WorkloadCheckRandom,
		Concurrency: 1, Duration: 100 * time.Millisecond, SkipLoad: true,
	})
	if err == nil || !strings.Contains(err.Error(), "invalid bearer token") {
		t.Errorf("Run with a wrong token: %v, want an invalid bearer token error", err)
	}
}

// TestRunOnSeveralEndpoints spreads a new-enemy run over two endpoints
// (one server named twice: the wiring is what is tested) and reports a
// row per endpoint.
func TestRunOnSeveralEndpoints(t *testing.T) {
	addr, _ := startServer(t)
	r, err := loadtest.Run(context.Background(), loadtest.Config{
		Endpoints: []string{addr, addr}, Token: "loadtest-secret", Plaintext: true,
		Dataset: "nested-org", Scale: 0.05, Seed: 1, Workload: loadtest.WorkloadNewEnemy,
		Concurrency: 3, Duration: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 2 {
		t.Fatalf("%d node reports, want 2:\n%s", len(r.Nodes), r.Text())
	}
	var total int64
	for _, n := range r.Nodes {
		for _, op := range n.Operations {
			total += op.Count
		}
		if len(n.Operations) == 0 {
			t.Errorf("node %s served nothing", n.Endpoint)
		}
	}
	var want int64
	for _, op := range r.Operations {
		want += op.Count
	}
	if total != want || r.NewEnemyChecks == 0 || r.NewEnemyViolations != 0 {
		t.Errorf("node rows count %d requests of %d; new-enemy %d checks, %d violations:\n%s",
			total, want, r.NewEnemyChecks, r.NewEnemyViolations, r.Text())
	}
	t.Logf("\n%s", r.Text())
}
