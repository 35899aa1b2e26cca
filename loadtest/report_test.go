package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSummarizePercentiles(t *testing.T) {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	failure := errors.New("boom")
	for _, tc := range []struct {
		name    string
		record  func(a, b *Recorder)
		elapsed time.Duration
		want    Operation
	}{
		{
			// Below 2048 µs the histogram is exact.
			name: "1..1000 µs",
			record: func(a, _ *Recorder) {
				for i := 1; i <= 1000; i++ {
					a.Record("check", us(i), nil)
				}
			},
			elapsed: 2 * time.Second,
			want:    Operation{Name: "check", Count: 1000, QPS: 500, P50Ms: 0.5, P90Ms: 0.9, P99Ms: 0.99, P999Ms: 0.999, MaxMs: 1},
		},
		{
			name: "merged from two workers, with errors",
			record: func(a, b *Recorder) {
				for i := 1; i <= 1000; i++ {
					var err error
					if i%100 == 0 {
						err = failure
					}
					if i%2 == 0 {
						a.Record("check", us(i), err)
					} else {
						b.Record("check", us(i), err)
					}
				}
			},
			elapsed: time.Second,
			want:    Operation{Name: "check", Count: 1000, Errors: 10, QPS: 1000, P50Ms: 0.5, P90Ms: 0.9, P99Ms: 0.99, P999Ms: 0.999, MaxMs: 1},
		},
		{
			// One slow request in 1001 moves only the maximum.
			name: "one outlier",
			record: func(a, _ *Recorder) {
				for range 1000 {
					a.Record("check", 10*time.Millisecond, nil)
				}
				a.Record("check", time.Second, nil)
			},
			elapsed: time.Second,
			want:    Operation{Name: "check", Count: 1001, QPS: 1001, P50Ms: 10, P90Ms: 10, P99Ms: 10, P999Ms: 10, MaxMs: 1000},
		},
		{
			// Sub-microsecond requests count as 1 µs; over an hour, as an hour.
			name: "clamped",
			record: func(a, _ *Recorder) {
				a.Record("check", 10*time.Nanosecond, nil)
				a.Record("check", 2*time.Hour, nil)
			},
			elapsed: time.Second,
			want:    Operation{Name: "check", Count: 2, QPS: 2, P50Ms: 0.001, P90Ms: 3600000, P99Ms: 3600000, P999Ms: 3600000, MaxMs: 3600000},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := NewRecorder(), NewRecorder()
			tc.record(a, b)
			ops := Summarize(tc.elapsed, a, b)
			if len(ops) != 1 {
				t.Fatalf("got %d operations, want 1", len(ops))
			}
			got := ops[0]
			// Above 2048 µs the histogram keeps three significant digits.
			close := func(g, w float64) bool { return math.Abs(g-w) <= w*0.001 }
			if got.Name != tc.want.Name || got.Count != tc.want.Count || got.Errors != tc.want.Errors ||
				!close(got.QPS, tc.want.QPS) || !close(got.P50Ms, tc.want.P50Ms) || !close(got.P90Ms, tc.want.P90Ms) ||
				!close(got.P99Ms, tc.want.P99Ms) || !close(got.P999Ms, tc.want.P999Ms) || !close(got.MaxMs, tc.want.MaxMs) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSummarizeKeepsAnErrorMessage(t *testing.T) {
	a, b := NewRecorder(), NewRecorder()
	a.Record("check", time.Millisecond, nil)
	b.Record("check", time.Millisecond, errors.New("rpc error: code = Unavailable"))
	b.Record("check", time.Millisecond, errors.New("later"))
	ops := Summarize(time.Second, a, b)
	if ops[0].Errors != 2 || ops[0].FirstError != "rpc error: code = Unavailable" {
		t.Errorf("errors %d, first error %q", ops[0].Errors, ops[0].FirstError)
	}
}

func TestSummarizeSortsOperations(t *testing.T) {
	r := NewRecorder()
	for _, op := range []string{"write", "check", "expand"} {
		r.Record(op, time.Millisecond, nil)
	}
	var names []string
	for _, op := range Summarize(time.Second, r) {
		names = append(names, op.Name)
	}
	if got := strings.Join(names, ","); got != "check,expand,write" {
		t.Errorf("operations in order %s", got)
	}
}

func sampleReport() *Report {
	hits := 0.75
	r := &Report{
		Dataset: "nested-org", Scale: 1, Seed: 1, Workload: "mixed", Concurrency: 8, Seconds: 10,
		Operations: []Operation{
			{Name: "check", Count: 9000, QPS: 900, P50Ms: 0.5, P90Ms: 1, P99Ms: 2, P999Ms: 4},
			{Name: "write", Count: 100, Errors: 1, QPS: 10, P50Ms: 1, P90Ms: 2, P99Ms: 3, P999Ms: 3},
		},
		Floor:         &Operation{Name: "health", Count: 30000, QPS: 3000, P50Ms: 0.1, P90Ms: 0.2, P99Ms: 0.3, P999Ms: 0.5},
		FloorQPS:      3000,
		ReadFloor:     &Operation{Name: "point-read", Count: 18000, QPS: 1800, P50Ms: 0.2, P90Ms: 0.3, P99Ms: 0.6, P999Ms: 0.9},
		ReadFloorQPS:  1800,
		CacheHitRatio: &hits,
	}
	r.computeRatio()
	return r
}

func TestRatioToFloorCountsChecksOnly(t *testing.T) {
	if got := sampleReport().RatioToFloor; math.Abs(got-0.3) > 1e-9 {
		t.Errorf("ratio to floor = %v, want 0.3 (900 checks/s over 3000 health checks/s)", got)
	}
	if got := sampleReport().RatioToReadFloor; math.Abs(got-0.5) > 1e-9 {
		t.Errorf("ratio to read floor = %v, want 0.5 (900 checks/s over 1800 reads/s)", got)
	}
}

func TestMarkdown(t *testing.T) {
	want := "| nested-org ×1 | mixed | 8 | check | 9000 | 0 | 900 | 0.50 | 1.00 | 2.00 | 4.00 | 30% | 50% | 75% | – | – |\n" +
		"| nested-org ×1 | mixed | 8 | write | 100 | 1 | 10 | 1.00 | 2.00 | 3.00 | 3.00 | – | – | 75% | – | – |\n" +
		"| nested-org ×1 | mixed | 8 | health | 30000 | 0 | 3000 | 0.10 | 0.20 | 0.30 | 0.50 | 100% | – | – | – | – |\n" +
		"| nested-org ×1 | mixed | 8 | point-read | 18000 | 0 | 1800 | 0.20 | 0.30 | 0.60 | 0.90 | – | 100% | – | – | – |\n"
	if got := sampleReport().Markdown(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if cols := strings.Count(strings.SplitN(MarkdownHeader, "\n", 2)[0], "|"); cols != strings.Count(strings.SplitN(want, "\n", 2)[0], "|") {
		t.Errorf("header has %d separators, rows a different number", cols)
	}
}

// TestJSONFields pins the field names scripts read.
func TestJSONFields(t *testing.T) {
	b, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"operations", "floor_qps", "ratio_to_floor", "read_floor_qps", "ratio_to_read_floor", "cache_hit_ratio", "dispatches_per_check", "new_enemy_violations"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	op := m["operations"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "count", "errors", "qps", "p50_ms", "p90_ms", "p99_ms", "p999_ms"} {
		if _, ok := op[k]; !ok {
			t.Errorf("operation JSON lacks %q: %v", k, op)
		}
	}
	if m["dispatches_per_check"] != nil {
		t.Errorf("dispatches_per_check = %v, want null when not scraped", m["dispatches_per_check"])
	}
}

func TestServerFigures(t *testing.T) {
	var r Report
	r.serverFigures(
		counters{metricCacheHits: 100, metricCacheMisses: 50, metricDispatches: 1000, metricReadCacheHits: 10, metricReadCacheMiss: 10},
		counters{metricCacheHits: 400, metricCacheMisses: 150, metricDispatches: 5000, metricReadCacheHits: 910, metricReadCacheMiss: 110},
		200)
	if r.CacheHitRatio == nil || *r.CacheHitRatio != 0.75 {
		t.Errorf("cache hit ratio = %v, want 0.75 (300 hits, 100 misses)", r.CacheHitRatio)
	}
	if r.DispatchesPerCheck == nil || *r.DispatchesPerCheck != 20 {
		t.Errorf("dispatches per check = %v, want 20 (4000 over 200 checks)", r.DispatchesPerCheck)
	}
	if r.ReadCacheHitRatio == nil || *r.ReadCacheHitRatio != 0.9 {
		t.Errorf("read cache hit ratio = %v, want 0.9 (900 hits, 100 misses)", r.ReadCacheHitRatio)
	}
	if r.DatastoreQueriesPerCheck == nil || *r.DatastoreQueriesPerCheck != 0.5 {
		t.Errorf("datastore queries per check = %v, want 0.5 (100 misses over 200 checks)", r.DatastoreQueriesPerCheck)
	}
	r.serverCPU(counters{metricProcessCPU: 10}, counters{metricProcessCPU: 12.5}, 5000)
	if r.ServerCPUMsPerRequest == nil || *r.ServerCPUMsPerRequest != 0.5 {
		t.Errorf("server CPU per request = %v, want 0.5 ms (2.5 s over 5000 requests)", r.ServerCPUMsPerRequest)
	}
	var none Report
	none.serverFigures(counters{}, counters{}, 200)
	none.serverCPU(counters{}, counters{}, 200)
	if none.CacheHitRatio != nil || none.DispatchesPerCheck != nil || none.ReadCacheHitRatio != nil || none.DatastoreQueriesPerCheck != nil || none.ServerCPUMsPerRequest != nil {
		t.Errorf("figures from a server without the counters: %v %v %v %v", none.CacheHitRatio, none.DispatchesPerCheck,
			none.ReadCacheHitRatio, none.DatastoreQueriesPerCheck)
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "# HELP pemba_check_cache_hits_total Hits.\n# TYPE pemba_check_cache_hits_total counter\npemba_check_cache_hits_total 42\n"+
			"# TYPE pemba_check_dispatches_total counter\npemba_check_dispatches_total{shard=\"a\"} 3\npemba_check_dispatches_total{shard=\"b\"} 4\n"+
			"# TYPE go_goroutines gauge\ngo_goroutines 7\n")
	}))
	defer srv.Close()
	got, err := scrape(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := counters{metricCacheHits: 42, metricDispatches: 7}
	if len(got) != len(want) || got[metricCacheHits] != 42 || got[metricDispatches] != 7 {
		t.Errorf("scraped %v, want %v", got, want)
	}
	if _, err := scrape(context.Background(), srv.URL+"/nope\x00"); err == nil {
		t.Error("scraping a malformed URL succeeded")
	}
}

// TestWaitSettled: a run waits while a server's reachability index lags
// or it warms its shared sets, and not at all for a server that exports
// neither.
func TestWaitSettled(t *testing.T) {
	for _, tc := range []struct {
		name    string
		scrape  []string // the metrics each scrape serves, the last repeated
		scrapes int      // scrapes before the wait ends
	}{
		{"settled", []string{"pemba_reach_index_lag 0\npemba_set_warming 0\n"}, 1},
		{"older server", []string{"go_goroutines 7\n"}, 1},
		{"index lags", []string{"pemba_reach_index_lag 5\npemba_set_warming 0\n", "pemba_reach_index_lag 0\npemba_set_warming 0\n"}, 2},
		{"warming", []string{"pemba_set_warming 1\n", "pemba_set_warming 1\n", "pemba_set_warming 0\n"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, tc.scrape[min(n, len(tc.scrape)-1)])
				n++
			}))
			defer srv.Close()
			_, warning, err := waitSettled(context.Background(), []string{srv.URL})
			if err != nil || warning != "" {
				t.Fatalf("waitSettled: warning %q, err %v", warning, err)
			}
			if n != tc.scrapes {
				t.Errorf("waited %d scrapes, want %d", n, tc.scrapes)
			}
		})
	}
}
