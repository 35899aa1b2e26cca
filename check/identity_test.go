package check

import (
	"context"
	"fmt"
	"iter"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// identityDirEnv names a directory holding (or to hold) the
// identity-platform graph at scale 1 for TestIdentityProfile: loading 1M
// relationships takes a minute, so the store is kept between runs.
const identityDirEnv = "PEMBA_IDENTITY_DIR"

// openIdentity opens the identity-platform store at $PEMBA_IDENTITY_DIR,
// loading it first when empty, or skips the test.
func openIdentity(t testing.TB) (*Engine, Snapshot, dataset.Dataset) {
	t.Helper()
	dir := os.Getenv(identityDirEnv)
	if dir == "" {
		t.Skipf("set %s to a directory to profile the identity-platform graph", identityDirEnv)
	}
	ds, err := dataset.New("identity-platform", dataset.Options{Scale: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pebble.Open(pebble.Options{Dir: dir, GCInterval: -1, NoSync: true, CacheSize: 512 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	ctx := context.Background()
	rev, err := eng.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := eng.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	loaded := false
	for _, err := range rd.QueryRelationships(ctx, storage.Filter{ResourceType: "org"}, storage.QueryOptions{Limit: 1}) {
		loaded = err == nil
	}
	if !loaded {
		start := time.Now()
		seq := func(yield func(graph.Relationship, error) bool) {
			for r := range ds.Relationships() {
				if !yield(r, nil) {
					return
				}
			}
		}
		if _, err := eng.Import(ctx, iter.Seq2[graph.Relationship, error](seq), storage.ImportOptions{BatchSize: 10000}); err != nil {
			t.Fatal(err)
		}
		t.Logf("loaded %d relationships in %v", ds.Size(), time.Since(start))
		if rev, err = eng.HeadRevision(ctx); err != nil {
			t.Fatal(err)
		}
		if rd, err = eng.SnapshotReader(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	s, err := schema.Compile("identity_platform.zed", ds.Schema())
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{}), Snapshot{Schema: s, Reader: rd}, ds
}

// TestIdentityProfile runs sampled checks and lookups on the
// identity-platform graph and logs, per operation kind, latency
// percentiles and the dispatches and storage queries of the costliest
// requests. It is a measuring tool, not a test of speed: it asserts
// nothing about time. PEMBA_IDENTITY_TRACE=1 also prints the dispatch tree
// of the costliest check.
func TestIdentityProfile(t *testing.T) {
	e, snap, ds := openIdentity(t)
	ctx := context.Background()
	n := envInt("PEMBA_IDENTITY_CHECKS", 300)
	smp := ds.NewSampler(7)
	type cost struct {
		what        string
		d, q        uint64
		took        time.Duration
		allowedInfo string
	}
	var costs []cost
	var total time.Duration
	for range n {
		c := smp.Check()
		// A fresh engine per check: no cross-request cache, as for a
		// random check on a large graph.
		e = New(Config{})
		start := time.Now()
		r, err := e.Check(ctx, snap, Request{Resource: c.Resource, Permission: c.Permission, Subject: c.Subject, Context: c.Context})
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		total += took
		st := e.Stats()
		costs = append(costs, cost{what: c.String(), d: st.Dispatches, q: st.Queries, took: took, allowedInfo: r.Permissionship.String()})
	}
	sort.Slice(costs, func(i, j int) bool { return costs[i].took < costs[j].took })
	var ds_, qs []uint64
	for _, c := range costs {
		ds_ = append(ds_, c.d)
		qs = append(qs, c.q)
	}
	slices.Sort(ds_)
	slices.Sort(qs)
	mean := func(xs []uint64) float64 {
		s := uint64(0)
		for _, x := range xs {
			s += x
		}
		return float64(s) / float64(len(xs))
	}
	t.Logf("checks: %d, mean %v, p50 %v, p99 %v, max %v", n, total/time.Duration(n), costs[n/2].took, costs[n*99/100].took, costs[n-1].took)
	t.Logf("dispatches/check: mean %.1f p50 %d p99 %d; queries/check: mean %.1f p50 %d p99 %d",
		mean(ds_), ds_[n/2], ds_[n*99/100], mean(qs), qs[n/2], qs[n*99/100])
	for _, c := range costs[max(0, n-8):] {
		t.Logf("  %v d=%d q=%d %s %s", c.took, c.d, c.q, c.allowedInfo, c.what)
	}
	if os.Getenv("PEMBA_IDENTITY_TRACE") != "" {
		worst := costs[n-1].what
		smp := ds.NewSampler(7)
		for range n {
			c := smp.Check()
			if c.String() != worst && (os.Getenv("PEMBA_IDENTITY_TRACE") != c.String()) {
				continue
			}
			traceCheck(t, snap, c)
			break
		}
	}
	lookupSubjectsProfile(t, snap, ds)
	lookupResourcesProfile(t, snap, ds)
}

// lookupResourcesProfile times sampled LookupResources requests (the
// first page of 100, as the load generator asks).
func lookupResourcesProfile(t *testing.T, snap Snapshot, ds dataset.Dataset) {
	n := envInt("PEMBA_IDENTITY_LOOKUPS", 20)
	smp := ds.NewSampler(13)
	var took []time.Duration
	for range n {
		l := smp.LookupResources()
		e := New(Config{})
		var qlog strings.Builder
		snap := snap
		if os.Getenv("PEMBA_IDENTITY_TRACE") == l.Subject.String() {
			snap.Reader = &loggingReader{Reader: snap.Reader, log: &qlog}
			traceEvaluate = func(depth int, typ, rel string, ids []string) {
				fmt.Fprintf(&qlog, "%s%s:{%s (%d)}#%s\n", strings.Repeat(" ", min(depth, 40)), typ, strings.Join(ids[:min(len(ids), 3)], ","), len(ids), rel)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		found := 0
		err := e.LookupResources(ctx, snap, LookupResourcesRequest{ResourceType: l.ResourceType, Permission: l.Permission, Subject: l.Subject, Context: l.Context, Limit: 100},
			func(ResourceResult) bool { found++; return true })
		cancel()
		d := time.Since(start)
		took = append(took, d)
		st := e.Stats()
		traceEvaluate = nil
		t.Logf("  lookup-resources %s#%s@%s: %d resources in %v (d=%d q=%d) err=%v\n%s", l.ResourceType, l.Permission, l.Subject, found, d, st.Dispatches, st.Queries, err, qlog.String())
	}
	slices.Sort(took)
	t.Logf("lookup-resources: %d, p50 %v, max %v", n, took[n/2], took[n-1])
}

// traceCheck prints the dispatch tree of one check.
func traceCheck(t *testing.T, snap Snapshot, c dataset.Check) {
	var b strings.Builder
	traceEvaluate = func(depth int, typ, rel string, ids []string) {
		idl := strings.Join(ids[:min(len(ids), 4)], ",")
		if len(ids) > 4 {
			idl += fmt.Sprintf(",… (%d)", len(ids))
		}
		fmt.Fprintf(&b, "%s%s:{%s}#%s\n", strings.Repeat(" ", min(depth, 40)), typ, idl, rel)
	}
	defer func() { traceEvaluate = nil }()
	snap.Reader = &loggingReader{Reader: snap.Reader, log: &b}
	e := New(Config{ReadCacheBytes: -1})
	if _, err := e.Check(context.Background(), snap, Request{Resource: c.Resource, Permission: c.Permission, Subject: c.Subject, Context: c.Context}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if len(out) > 20000 {
		out = out[:20000] + "\n…"
	}
	t.Logf("dispatch tree of %s:\n%s", c, out)
}

// lookupSubjectsProfile times sampled LookupSubjects requests.
func lookupSubjectsProfile(t *testing.T, snap Snapshot, ds dataset.Dataset) {
	n := envInt("PEMBA_IDENTITY_LOOKUPS", 20)
	smp := ds.NewSampler(11)
	var took []time.Duration
	for range n {
		l := smp.LookupSubjects()
		e := New(Config{})
		var qlog strings.Builder
		snap := snap
		if os.Getenv("PEMBA_IDENTITY_TRACE") == l.Resource.String() {
			snap.Reader = &loggingReader{Reader: snap.Reader, log: &qlog}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		found := 0
		err := e.LookupSubjects(ctx, snap, LookupSubjectsRequest{Resource: l.Resource, Permission: l.Permission, SubjectType: l.SubjectType, Context: l.Context},
			func(SubjectResult) bool { found++; return true })
		cancel()
		d := time.Since(start)
		took = append(took, d)
		st := e.Stats()
		t.Logf("  lookup-subjects %s#%s: %d subjects in %v (d=%d q=%d) err=%v%s", l.Resource, l.Permission, found, d, st.Dispatches, st.Queries, err, qlog.String())
	}
	slices.Sort(took)
	t.Logf("lookup-subjects: %d, p50 %v, max %v", n, took[n/2], took[n-1])
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil || v <= 0 {
		return def
	}
	return v
}

// loggingReader logs every storage query to log.
type loggingReader struct {
	storage.Reader
	log *strings.Builder
}

func (r *loggingReader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	ids := strings.Join(f.ResourceIDs[:min(len(f.ResourceIDs), 3)], ",")
	sub := ""
	if f.Subject != nil {
		sub = fmt.Sprintf(" @%s:%v", f.Subject.Type, f.Subject.IDs)
		if f.Subject.Relation != nil {
			sub += "#" + *f.Subject.Relation
		}
	}
	what := fmt.Sprintf("QUERY %s:{%s (%d)}#%s%s limit %d", f.ResourceType, ids, len(f.ResourceIDs), f.Relation, sub, opts.Limit)
	return r.timed(what, r.Reader.QueryRelationships(ctx, f, opts))
}

// timed logs what with the rows it yielded and the time it took.
func (r *loggingReader) timed(what string, seq iter.Seq2[graph.Relationship, error]) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		start, n := time.Now(), 0
		defer func() { fmt.Fprintf(r.log, "  %s: %d rows in %v\n", what, n, time.Since(start)) }()
		for x, err := range seq {
			n++
			if !yield(x, err) {
				return
			}
		}
	}
}

func (r *loggingReader) ReverseQueryRelationships(ctx context.Context, f storage.ReverseFilter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	what := fmt.Sprintf("REVERSE %s#%s @%s:%v", f.ResourceType, f.Relation, f.Subject.Type, f.Subject.IDs[:min(len(f.Subject.IDs), 3)])
	return r.timed(what, r.Reader.ReverseQueryRelationships(ctx, f, opts))
}
