package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pembadb/pemba/loadtest"
	"github.com/pembadb/pemba/loadtest/dataset"
)

// loadtestGCPercent is the load generator's GOGC unless the environment
// sets one.
const loadtestGCPercent = 400

func init() {
	var (
		cfg      loadtest.Config
		jsonFile string
		markdown bool
		quiet    bool
	)
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "Load a generated graph into a running server and measure it over gRPC",
		Long: `loadtest loads a generated data set into a running Pemba server through the
streaming import API, runs a workload with closed-loop workers for --duration,
then runs the same workers for the same time against the gRPC health check
(the floor: what transport and machine allow) and against fully consistent
reads of one relationship (the read floor: transport plus one indexed
datastore read), and reports, per operation, the count, errors, QPS and
p50/p90/p99/p99.9 latency, the check rate as a share of each floor, and the
server's cache hit ratio and dispatches per check
(scraped from --metrics-url). With --api spicedb the check workloads call
SpiceDB's authzed.api.v1 on the same server, for comparing the two APIs.

Data sets: ` + strings.Join(dataset.Names(), ", ") + `.
Workloads: ` + strings.Join(loadtest.Workloads(), ", ") + `.

Its own garbage collector runs at GOGC=400 unless GOGC is set, so that it
takes less CPU from a server on the same machine.

Several --endpoint addresses (servers sharing one datastore) share the
requests: each worker sends them to the servers in turn, so a write's
zookie is usually carried by the next request to another server, and the
report adds one row per server and operation. The data set is loaded
through the first. Give one --metrics-url per endpoint for the
server-side figures; with them, a run first waits for the servers to
settle (reachability index caught up, shared subject sets warmed).

It exits 1 when the new-enemy workload saw a violation (a check carrying a
revoke's zookie that still granted), 2 when the run could not be done.`,
		Example: `  pemba serve --dev &
  pemba loadtest --insecure --token "$TOKEN" --dataset nested-org --workload check-random \
      --concurrency 8 --duration 30s --json result.json
  pemba loadtest --token "$TOKEN" --workload new-enemy \
      --endpoint 10.0.0.1:50051,10.0.0.2:50051 \
      --metrics-url http://10.0.0.1:8080/metrics,http://10.0.0.2:8080/metrics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Progress bars only on a terminal: a log or a pipe gets the
			// report alone.
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
				cfg.Progress = f
			}
			// Like every other client command: the endpoint and TLS from
			// the environment, plaintext by default on loopback.
			flags := cmd.Flags()
			if v, ok := os.LookupEnv("PEMBA_ENDPOINT"); ok && !flags.Changed("endpoint") {
				cfg.Endpoints = strings.Split(v, ",")
				for i, ep := range cfg.Endpoints {
					cfg.Endpoints[i] = strings.TrimSpace(ep)
				}
			}
			if !flags.Changed("insecure") {
				cfg.Plaintext = allLoopback(cfg.Endpoints)
				if v, ok := os.LookupEnv("PEMBA_INSECURE"); ok {
					b, err := strconv.ParseBool(v)
					if err != nil {
						return usageError("PEMBA_INSECURE=%q: want true or false", v)
					}
					cfg.Plaintext = b
				}
			}
			if os.Getenv("GOGC") == "" {
				// The load generator usually shares the machine with the
				// server it measures: collecting its garbage less often
				// leaves more CPU to the server. GOGC overrides this.
				debug.SetGCPercent(loadtestGCPercent)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			report, err := loadtest.Run(ctx, cfg)
			if err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("loadtest: %w%s", err, tlsHint(err, cfg.Plaintext))}
			}
			out := cmd.OutOrStdout()
			if cfg.LoadOnly {
				fmt.Fprint(out, report.LoadText())
				return nil
			}
			fmt.Fprint(out, report.Text())
			if markdown {
				fmt.Fprint(out, "\n"+loadtest.MarkdownHeader+report.Markdown())
			}
			if jsonFile != "" {
				b, err := json.MarshalIndent(report, "", "  ")
				if err != nil {
					return &exitCodeError{code: exitError, err: fmt.Errorf("loadtest: encode report: %w", err)}
				}
				if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
					return &exitCodeError{code: exitError, err: fmt.Errorf("loadtest: write --json: %w", err)}
				}
			}
			if report.NewEnemyViolations > 0 {
				return &exitCodeError{code: exitFailure, err: fmt.Errorf("loadtest: %d new-enemy violations", report.NewEnemyViolations)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Endpoints, "endpoint", []string{"127.0.0.1:50051"},
		"gRPC address of the server; several (comma-separated or repeated) share the requests round-robin and get a row each (env PEMBA_ENDPOINT)")
	f.StringVar(&cfg.Token, "token", os.Getenv("PEMBA_TOKEN"), "bearer token (default $PEMBA_TOKEN)")
	f.BoolVar(&cfg.Plaintext, "insecure", false, "connect without TLS (default for loopback endpoints; env PEMBA_INSECURE)")
	f.StringSliceVar(&cfg.MetricsURLs, "metrics-url", []string{"http://127.0.0.1:8080/metrics"},
		`the server's Prometheus endpoint, one per --endpoint, comma-separated or repeated ("" skips server-side figures)`)
	f.StringVar(&cfg.Dataset, "dataset", "nested-org", "data set: "+strings.Join(dataset.Names(), ", "))
	f.Float64Var(&cfg.Scale, "scale", 1, "multiply every object count of the data set (0.001 makes one to try in seconds)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the data set")
	f.Uint64Var(&cfg.SampleSeed, "sample-seed", 0, "seed of the request samplers (0: random, printed in the report)")
	f.StringVar(&cfg.Workload, "workload", loadtest.WorkloadMixed, "workload: "+strings.Join(loadtest.Workloads(), ", "))
	f.StringVar(&cfg.API, "api", loadtest.APIPemba, "API the load and the workloads call: pemba (pemba.v1) or spicedb (authzed.api.v1: Pemba's on the same listener, or a SpiceDB server; check-random, check-hot, lookup-resources, lookup-subjects and read)")
	f.IntVar(&cfg.SubjectsPerResponse, "subjects-per-response", 1000, "subjects a pemba.v1 LookupSubjects asks to receive packed into each response (1: one per response, as authzed.api.v1 sends them)")
	f.IntVar(&cfg.Concurrency, "concurrency", 8, "closed-loop workers")
	f.IntVar(&cfg.Connections, "connections", 0, "gRPC connections to each endpoint the workers share (0: one per 8 workers, at most 4)")
	f.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to run the workload, and then each floor")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", 10*time.Second, "deadline of each request; a request that misses it counts as an error")
	f.DurationVar(&cfg.Warmup, "warmup", 0, "run the workload this long, unrecorded, before measuring")
	f.BoolVar(&cfg.SkipLoad, "skip-load", false, "reuse the data already loaded (same --dataset, --scale and --seed)")
	f.BoolVar(&cfg.LoadOnly, "load-only", false, "load the data set, print how long it took and stop (no workload)")
	f.StringVar(&jsonFile, "json", "", "also write the report as JSON to this file")
	f.BoolVar(&markdown, "markdown", false, "also print the report as Markdown table rows (for BENCHMARKS.md)")
	f.BoolVar(&quiet, "quiet", false, "draw no progress bars")
	rootCmd.AddCommand(cmd)
}

// allLoopback reports whether every endpoint is on loopback, where
// loadtest connects in plaintext by default.
func allLoopback(endpoints []string) bool {
	for _, ep := range endpoints {
		if !loopbackEndpoint(ep) {
			return false
		}
	}
	return len(endpoints) > 0
}

// tlsHint says which flag fixes a connection that failed because the
// client and the server disagree about TLS.
func tlsHint(err error, plaintext bool) string {
	msg := err.Error()
	switch {
	case !plaintext && strings.Contains(msg, "first record does not look like a TLS handshake"):
		return " (the server speaks plaintext: pass --insecure)"
	case plaintext && (strings.Contains(msg, "server preface") || strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "EOF")):
		return " (the server may expect TLS: pass --insecure=false)"
	}
	return ""
}
