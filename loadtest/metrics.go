package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Server counters the report derives its cache and dispatch figures from;
// the server exports them from check.Engine's statistics.
const (
	metricCacheHits     = "pemba_check_cache_hits_total"
	metricCacheMisses   = "pemba_check_cache_misses_total"
	metricDispatches    = "pemba_check_dispatches_total"
	metricReadCacheHits = "pemba_read_cache_hits_total"
	metricReadCacheMiss = "pemba_read_cache_misses_total"
	// metricProcessCPU is the server process's CPU time (Prometheus's
	// process collector).
	metricProcessCPU = "process_cpu_seconds_total"
	// metricReachLag is the revisions the server's reachability index
	// trails the datastore head (a gauge; absent without the index).
	metricReachLag = "pemba_reach_index_lag"
)

// counters are scraped counter values by name.
type counters map[string]float64

// scrape reads the counters above from a Prometheus text endpoint.
func scrape(ctx context.Context, url string) (counters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	out := counters{}
	for _, name := range []string{metricCacheHits, metricCacheMisses, metricDispatches, metricReadCacheHits, metricReadCacheMiss, metricProcessCPU, metricReachLag} {
		f := families[name]
		if f == nil {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				sum += m.GetUntyped().GetValue()
			}
		}
		out[name] = sum
	}
	return out, nil
}

// indexWaitMax bounds how long a run waits for the servers' reachability
// indexes before it measures anyway.
const indexWaitMax = 5 * time.Minute

// waitIndexes waits until the reachability index of every server urls
// scrape has applied every write (pemba_reach_index_lag is 0, or the server
// has no index), so a run right after a load measures the server as it
// serves, not while its index is still catching up and checks walk. It
// returns how long it waited, and a warning when it gave up after
// indexWaitMax.
func waitIndexes(ctx context.Context, urls []string) (time.Duration, string, error) {
	start := time.Now()
	for {
		lag := 0.0
		for _, u := range urls {
			c, err := scrape(ctx, u)
			if err != nil {
				return time.Since(start), "", err
			}
			lag += c[metricReachLag]
		}
		waited := time.Since(start)
		if lag == 0 {
			return waited, "", nil
		}
		if waited > indexWaitMax {
			return waited, fmt.Sprintf("measured with the reachability index still %.0f revisions behind after %s", lag, indexWaitMax), nil
		}
		select {
		case <-ctx.Done():
			return waited, "", ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// serverFigures sets the report's cache hit ratios, dispatches and
// datastore queries per check from counters scraped before and after the
// workload; figures the server does not export stay nil.
func (r *Report) serverFigures(before, after counters, checks int64) {
	delta := func(name string) (float64, bool) {
		a, okA := after[name]
		b, okB := before[name]
		return a - b, okA && okB
	}
	hits, okH := delta(metricCacheHits)
	misses, okM := delta(metricCacheMisses)
	if okH && okM && hits+misses > 0 {
		ratio := hits / (hits + misses)
		r.CacheHitRatio = &ratio
	}
	if d, ok := delta(metricDispatches); ok && checks > 0 {
		per := d / float64(checks)
		r.DispatchesPerCheck = &per
	}
	readHits, okH := delta(metricReadCacheHits)
	readMisses, okM := delta(metricReadCacheMiss)
	if okH && okM {
		if readHits+readMisses > 0 {
			ratio := readHits / (readHits + readMisses)
			r.ReadCacheHitRatio = &ratio
		}
		if checks > 0 {
			per := readMisses / float64(checks)
			r.DatastoreQueriesPerCheck = &per
		}
	}
}

// serverCPU sets the server's CPU time per workload request from its
// process CPU counter scraped before and after the workload. On a shared
// machine it moves much less than the rates do: a request's CPU cost does
// not depend on how long it waited for a core.
func (r *Report) serverCPU(before, after counters, requests int64) {
	a, okA := after[metricProcessCPU]
	b, okB := before[metricProcessCPU]
	if okA && okB && requests > 0 {
		per := (a - b) * 1000 / float64(requests)
		r.ServerCPUMsPerRequest = &per
	}
}
