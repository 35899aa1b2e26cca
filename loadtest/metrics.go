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
	// metricSetWarming is 1 while the server warms its shared subject
	// sets (after an import, for one), else 0 (absent on older servers).
	metricSetWarming = "pemba_set_warming"
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
	for _, name := range []string{metricCacheHits, metricCacheMisses, metricDispatches, metricReadCacheHits, metricReadCacheMiss, metricProcessCPU, metricReachLag, metricSetWarming} {
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

// settleWaitMax bounds how long a run waits for the servers to settle
// before it measures anyway.
const settleWaitMax = 5 * time.Minute

// waitSettled waits until every server urls scrape has settled after the
// writes before the run (a load): its reachability index has applied
// every write (pemba_reach_index_lag is 0, or the server has no index)
// and it is not warming its shared subject sets (pemba_set_warming, which
// an import starts). A run right after a load then measures the server
// as it serves, not while its index catches up and checks walk, nor
// while it computes the sets every lookup intersects with. It returns how
// long it waited, and a warning when it gave up after settleWaitMax.
func waitSettled(ctx context.Context, urls []string) (time.Duration, string, error) {
	start := time.Now()
	for {
		lag, warming := 0.0, 0.0
		for _, u := range urls {
			c, err := scrape(ctx, u)
			if err != nil {
				return time.Since(start), "", err
			}
			lag += c[metricReachLag]
			warming += c[metricSetWarming]
		}
		waited := time.Since(start)
		if lag == 0 && warming == 0 {
			return waited, "", nil
		}
		if waited > settleWaitMax {
			return waited, fmt.Sprintf("measured after %s with the reachability index %.0f revisions behind and %.0f servers warming their shared sets", settleWaitMax, lag, warming), nil
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
