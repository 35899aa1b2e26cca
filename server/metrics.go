package server

import (
	"context"
	"iter"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/pembadb/pemba/check"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// metrics are the server's Prometheus collectors, in a registry of their
// own so several servers can live in one process (tests).
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.HistogramVec // method, code
	datastore *prometheus.HistogramVec // operation
}

func newMetrics(s *Server) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pemba_request_duration_seconds",
		Help:    "Latency of API requests by gRPC method and status code.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "code"})
	m.datastore = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pemba_datastore_duration_seconds",
		Help:    "Latency of datastore operations.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"operation"})
	stat := func(name, help string, get func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, get)
	}
	// sharedSets counts the shared sets computed whole in the background
	// with one outcome.
	sharedSets := func(outcome string, get func(check.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "pemba_shared_sets_total",
			Help:        "Shared subject sets lookups wanted computed whole in the background, by outcome: cached, too_large (out of time or over a quarter of --set-cache-bytes; lookups evaluate it narrowed), failed, deferred (another was being computed); warmed counts the sets computed at start before the server reported ready (--warm-sets-wait).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(get(s.checker.Stats())) })
	}
	m.registry.MustRegister(
		m.requests, m.datastore,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		stat("pemba_check_cache_hits_total", "Check sub-problems answered from the result cache.",
			func() float64 { return float64(s.checker.Stats().CacheHits) }),
		stat("pemba_check_cache_misses_total", "Check sub-problems not found in the result cache.",
			func() float64 { return float64(s.checker.Stats().CacheMisses) }),
		stat("pemba_check_dispatches_total", "Check sub-problems evaluated locally.",
			func() float64 { return float64(s.checker.Stats().Dispatches) }),
		stat("pemba_check_shared_total", "Check sub-problems answered by a concurrent identical evaluation.",
			func() float64 { return float64(s.checker.Stats().Shared) }),
		stat("pemba_check_queries_total", "Relationship queries issued by the check engine (read cache hits included).",
			func() float64 { return float64(s.checker.Stats().Queries) }),
		stat("pemba_read_cache_hits_total", "Relationship queries of the check engine answered from the read cache.",
			func() float64 { return float64(s.checker.Stats().ReadCacheHits) }),
		stat("pemba_read_cache_misses_total", "Relationship queries of the check engine passed to the datastore.",
			func() float64 { return float64(s.checker.Stats().ReadCacheMisses) }),
		stat("pemba_set_cache_hits_total", "Subject sets lookups found in the subject-set cache.",
			func() float64 { return float64(s.checker.Stats().SetCacheHits) }),
		stat("pemba_set_cache_misses_total", "Subject sets lookups did not find in the subject-set cache.",
			func() float64 { return float64(s.checker.Stats().SetCacheMisses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pemba_set_cache_bytes", Help: "Estimated memory of the subject sets cached (bounded by --set-cache-bytes)."},
			func() float64 { return float64(s.checker.Stats().SetCacheBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pemba_set_cache_entries", Help: "Subject sets cached."},
			func() float64 { return float64(s.checker.Stats().SetCacheEntries) }),
		sharedSets("cached", func(st check.Stats) uint64 { return st.SetsComputed }),
		sharedSets("too_large", func(st check.Stats) uint64 { return st.SetsTooLarge }),
		sharedSets("failed", func(st check.Stats) uint64 { return st.SetsFailed }),
		sharedSets("deferred", func(st check.Stats) uint64 { return st.SetsDeferred }),
		sharedSets("warmed", func(st check.Stats) uint64 { return st.SetsWarmed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pemba_set_warming",
			Help: "1 while the server warms the shared subject sets (at start and after each import, --warm-sets-wait), else 0.",
		}, func() float64 {
			if s.warming() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pemba_revision_lag",
			Help: "Revisions the quantized (minimize_latency) head trails the datastore head.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return s.revs.Lag(ctx)
		}),
	)
	if s.reach != nil {
		m.registry.MustRegister(s.reachCollectors()...)
	}
	if st, ok := s.cfg.Engine.(storeStatser); ok {
		m.registry.MustRegister(newStoreCollector(st))
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) observe(method string, start time.Time, err error) {
	m.requests.WithLabelValues(method, status.Code(err).String()).Observe(time.Since(start).Seconds())
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

// isServerFault reports codes that mean the server, not the request, failed.
func isServerFault(c codes.Code) bool {
	switch c {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unavailable:
		return true
	}
	return false
}

// instrumented is a storage.Engine decorator that times every operation
// (reads are timed when their reader is opened and per query).
type instrumented struct {
	storage.Engine
	m *metrics
}

func instrument(e storage.Engine, m *metrics) storage.Engine { return &instrumented{Engine: e, m: m} }

func (e *instrumented) time(op string, start time.Time) {
	e.m.datastore.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (e *instrumented) HeadRevision(ctx context.Context) (storage.Revision, error) {
	defer e.time("head_revision", time.Now())
	return e.Engine.HeadRevision(ctx)
}

func (e *instrumented) SnapshotReader(ctx context.Context, rev storage.Revision) (storage.Reader, error) {
	defer e.time("snapshot_reader", time.Now())
	r, err := e.Engine.SnapshotReader(ctx, rev)
	if err != nil {
		return nil, err
	}
	return &instrumentedReader{Reader: r, e: e}, nil
}

func (e *instrumented) Write(ctx context.Context, req storage.WriteRequest) (storage.Revision, error) {
	defer e.time("write", time.Now())
	return e.Engine.Write(ctx, req)
}

func (e *instrumented) DeleteRelationships(ctx context.Context, f storage.Filter, limit int, meta storage.WriteMetadata) (storage.DeleteResult, error) {
	defer e.time("delete", time.Now())
	return e.Engine.DeleteRelationships(ctx, f, limit, meta)
}

func (e *instrumented) WriteSchema(ctx context.Context, w storage.SchemaWrite) (storage.Revision, error) {
	defer e.time("write_schema", time.Now())
	return e.Engine.WriteSchema(ctx, w)
}

// AfterImport passes an import's end to a datastore that refreshes what
// bulk loads leave stale (storage/sql's AfterImport), timed.
func (e *instrumented) AfterImport(ctx context.Context, imported int) {
	r, ok := e.Engine.(interface {
		AfterImport(ctx context.Context, imported int)
	})
	if !ok {
		return
	}
	defer e.time("after_import", time.Now())
	r.AfterImport(ctx, imported)
}

// instrumentedReader times each query until its iteration ends.
type instrumentedReader struct {
	storage.Reader
	e *instrumented
}

func (r *instrumentedReader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	return r.timed("query", r.Reader.QueryRelationships(ctx, f, opts))
}

func (r *instrumentedReader) ReverseQueryRelationships(ctx context.Context, f storage.ReverseFilter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	return r.timed("reverse_query", r.Reader.ReverseQueryRelationships(ctx, f, opts))
}

func (r *instrumentedReader) timed(op string, seq iter.Seq2[graph.Relationship, error]) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		defer r.e.time(op, time.Now())
		seq(yield)
	}
}
