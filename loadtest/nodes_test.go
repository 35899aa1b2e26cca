package loadtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRoundRobin: each request of a worker goes to the next endpoint,
// worker i starting at endpoint i, and is recorded under that endpoint;
// the per-node report has every endpoint's requests, in the order given.
func TestRoundRobin(t *testing.T) {
	endpoints := []string{"a:1", "b:1", "c:1"}
	clients := []*client{{}, {}, {}}
	workers := []*worker{
		{id: 0, nodes: clients, timeout: time.Second},
		{id: 1, nodes: clients, timeout: time.Second},
	}
	for i, w := range workers {
		w.resetRecorders()
		var got []int
		for call := range 7 {
			var err error
			if i == 1 && call == 0 {
				err = errors.New("refused")
			}
			_ = w.timed(context.Background(), opCheck, func(context.Context) error {
				for n, c := range clients {
					if c == w.c {
						got = append(got, n)
					}
				}
				return err
			})
		}
		want := []int{i, i + 1, i + 2, i, i + 1, i + 2, i}
		for k := range want {
			want[k] %= len(clients)
		}
		if !slices.Equal(got, want) {
			t.Errorf("worker %d sent its requests to nodes %v, want %v", i, got, want)
		}
	}

	nodes := nodeReports(endpoints, workers, time.Second)
	if len(nodes) != 3 {
		t.Fatalf("%d node reports, want 3", len(nodes))
	}
	// Worker 0: a b c a b c a; worker 1: b c a b c a b (its first failed).
	for i, want := range []struct {
		count, errors int64
	}{{5, 0}, {5, 1}, {4, 0}} {
		n := nodes[i]
		if n.Endpoint != endpoints[i] || len(n.Operations) != 1 || n.Operations[0].Count != want.count || n.Operations[0].Errors != want.errors {
			t.Errorf("node %d: %+v, want %s with %d checks, %d errors", i, n, endpoints[i], want.count, want.errors)
		}
	}
	if got := nodeReports(endpoints[:1], workers, time.Second); got != nil {
		t.Errorf("a run on one endpoint has node reports: %+v", got)
	}

	r := &Report{Dataset: "d", Scale: 1, Workload: WorkloadCheckRandom, Operations: Summarize(time.Second, recorders(workers)...), Nodes: nodes}
	text := r.Text()
	for _, want := range []string{"node operation", "a:1  check", "b:1  check", "c:1  check"} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	lines := strings.Split(text, "\n")
	var nodeRows []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 3 && strings.HasSuffix(f[0], ":1") {
			nodeRows = append(nodeRows, f[0]+" "+f[2]+" "+f[3])
		}
	}
	if got, want := strings.Join(nodeRows, "; "), "a:1 5 0; b:1 5 1; c:1 4 0"; got != want {
		t.Errorf("node rows (endpoint count errors) = %q, want %q:\n%s", got, want, text)
	}
}

// TestMetricsURLsPerEndpoint: several endpoints need one metrics URL
// each, or the server-side figures are skipped with a warning.
func TestMetricsURLsPerEndpoint(t *testing.T) {
	for _, tc := range []struct {
		endpoints, metrics []string
		want               int
		warn               string
	}{
		{[]string{"a:1"}, []string{"http://a/metrics"}, 1, ""},
		{[]string{"a:1"}, nil, 0, ""},
		{[]string{"a:1", "b:1"}, []string{"http://a/metrics", "http://b/metrics"}, 2, ""},
		{[]string{"a:1", "b:1"}, []string{"http://a/metrics"}, 0, "1 metrics URLs for 2 endpoints"},
		{[]string{"a:1", "b:1"}, nil, 0, ""},
	} {
		got, warn := Config{Endpoints: tc.endpoints, MetricsURLs: tc.metrics}.metricsURLs()
		if len(got) != tc.want || !strings.Contains(warn, tc.warn) || (tc.warn == "") != (warn == "") {
			t.Errorf("endpoints %v, metrics %v: %v, %q; want %d URLs, warning %q", tc.endpoints, tc.metrics, got, warn, tc.want, tc.warn)
		}
	}
}

// TestValidateEndpoints: a run needs an endpoint, and none may be empty.
func TestValidateEndpoints(t *testing.T) {
	base := Config{Workload: WorkloadCheckRandom, Concurrency: 1, Duration: time.Second}
	for _, tc := range []struct {
		endpoints []string
		want      string
	}{
		{nil, "endpoint: required"},
		{[]string{"a:1", ""}, "endpoint 2 of 2: empty"},
		{[]string{"a:1", "b:1"}, ""},
	} {
		cfg := base
		cfg.Endpoints = tc.endpoints
		err := cfg.Validate()
		if (err == nil) != (tc.want == "") || err != nil && err.Error() != tc.want {
			t.Errorf("endpoints %q: %v, want %q", tc.endpoints, err, tc.want)
		}
	}
}
