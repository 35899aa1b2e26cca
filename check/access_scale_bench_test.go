package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	"github.com/pembadb/pemba/schema"

	"github.com/pembadb/pemba/internal/cputime"
)

// The identity-platform access benchmarks run on the load test's
// identity-platform data set (about 1.04M relationships per unit of
// scale), seed 1. Building it takes a while, so they are skipped unless
// PEMBA_ACCESS_BENCH_SCALE names the scale:
//
//	PEMBA_ACCESS_BENCH_SCALE=1 go test ./check/ -run XXX -bench 'CanAccessIdentityPlatform' -cpu 1 -benchtime 8x
//
// Each iteration asks about the next of 8 resources (or subjects) drawn
// at random with a fixed seed, so a run of 8x (or a multiple) covers each
// once; besides the mean the benchmarks report the median and the largest
// time to the first row and to the last, and the median and largest row
// count, over the iterations.
const accessScaleEnv = "PEMBA_ACCESS_BENCH_SCALE"

var (
	ipOnce  sync.Once
	ipWorld *benchWorld
	ipScale int
)

// loadIdentityPlatform builds the identity-platform graph once per
// process, or skips the benchmark when accessScaleEnv is unset.
func loadIdentityPlatform(b *testing.B) (*benchWorld, int) {
	v := os.Getenv(accessScaleEnv)
	if v == "" {
		b.Skipf("set %s (e.g. 1) to build the identity-platform graph", accessScaleEnv)
	}
	ipOnce.Do(func() {
		scale, err := strconv.Atoi(v)
		if err != nil || scale < 1 {
			b.Fatalf("%s=%q: want a scale of at least 1", accessScaleEnv, v)
		}
		d, err := dataset.New("identity-platform", dataset.Options{Scale: float64(scale), Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		s, err := schema.Compile("identity_platform.zed", d.Schema())
		if err != nil {
			b.Fatal(err)
		}
		rels := make([]graph.Relationship, 0, d.Size())
		for r := range d.Relationships() {
			rels = append(rels, r)
		}
		store := openTestStore(b)
		store.write(b, rels)
		ipWorld, ipScale = &benchWorld{store: store, snap: Snapshot{Schema: s, Reader: store.reader(b)}}, scale
	})
	if ipWorld == nil {
		b.Fatal("identity-platform data set failed to load")
	}
	return ipWorld, ipScale
}

// ipSample draws n IDs prefix0..prefix(count-1) with a fixed seed.
func ipSample(seed uint64, n int, prefix string, count int) []string {
	rng := rand.New(rand.NewPCG(seed, seed))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(rng.IntN(count))
	}
	return ids
}

// ipSampleSize is how many resources or subjects a benchmark cycles
// through.
const ipSampleSize = 8

// BenchmarkWhoCanAccessIdentityPlatform lists who holds every permission
// ("all") and read alone on resources of each type, and reads one page of
// read rows resumed by a cursor ("page").
func BenchmarkWhoCanAccessIdentityPlatform(b *testing.B) {
	w, scale := loadIdentityPlatform(b)
	kinds := []struct {
		typ, prefix string
		count       int
	}{
		{"repository", "repo-", 30000}, {"model", "model-", 20000}, {"dataset", "ds-", 40000}, {"cluster", "cluster-", 1000},
	}
	for _, k := range kinds {
		ids := ipSample(11, ipSampleSize, k.prefix, k.count*scale)
		if id, ok := strings.CutPrefix(os.Getenv("PEMBA_ACCESS_BENCH_ID"), k.prefix); ok {
			ids = []string{k.prefix + id} // one resource, to profile it
		}
		for _, perms := range [][]string{nil, {"read"}} {
			name := "all"
			if perms != nil {
				name = perms[0]
			}
			b.Run(k.typ+"/"+name, func(b *testing.B) {
				benchAccessScale(b, func(ctx context.Context, e *Engine, i int, yield func(AccessRow) bool) (string, error) {
					req := WhoRequest{Resource: graph.ObjectRef{Type: k.typ, ID: ids[i%len(ids)]}, Permissions: perms, Now: goldenNow}
					return req.Resource.String(), e.WhoCanAccess(ctx, w.snap, req, yield)
				})
			})
		}
		// A page of 100 read rows resumed in the middle of the users (a
		// cursor after user:emp-5, by ID order).
		b.Run(k.typ+"/page", func(b *testing.B) {
			benchAccessScale(b, func(ctx context.Context, e *Engine, i int, yield func(AccessRow) bool) (string, error) {
				res := graph.ObjectRef{Type: k.typ, ID: ids[i%len(ids)]}
				req := WhoRequest{Resource: res, Permissions: []string{"read"}, Now: goldenNow,
					After: &AccessCursor{Revision: w.snap.Reader.Revision(), Resource: res, Permission: "read",
						Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "emp-5"}}}}
				n := 0
				return res.String(), e.WhoCanAccess(ctx, w.snap, req, func(r AccessRow) bool {
					n++
					return yield(r) && n < 100
				})
			})
		})
	}
}

// BenchmarkWhatCanAccessIdentityPlatform lists every resource and
// permission a user (an employee) and an agent holds.
func BenchmarkWhatCanAccessIdentityPlatform(b *testing.B) {
	w, scale := loadIdentityPlatform(b)
	for _, s := range []struct {
		name, typ, prefix string
		count             int
	}{
		{"user", "user", "emp-", 40000}, {"agent", "agent", "agent-", 10000},
	} {
		ids := ipSample(12, ipSampleSize, s.prefix, s.count*scale)
		b.Run(s.name, func(b *testing.B) {
			benchAccessScale(b, func(ctx context.Context, e *Engine, i int, yield func(AccessRow) bool) (string, error) {
				req := WhatRequest{Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: s.typ, ID: ids[i%len(ids)]}}, Now: goldenNow}
				return req.Subject.String(), e.WhatCanAccess(ctx, w.snap, req, yield)
			})
		})
	}
}

// benchAccessScale runs query once per iteration on a cold engine (no
// result cache, no read cache) and reports the distribution of its times
// to the first and the last row, its rows and the bytes it allocated; with
// PEMBA_ACCESS_BENCH_LOG set it prints each iteration's figures under the
// label query returns.
func benchAccessScale(b *testing.B, query func(ctx context.Context, e *Engine, i int, yield func(AccessRow) bool) (label string, err error)) {
	verbose := os.Getenv("PEMBA_ACCESS_BENCH_LOG") != ""
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	ctx := context.Background()
	var first, total []time.Duration
	var rows, bytes, peaks []float64
	alloc := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	cpu0 := cputime.Process()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		peak := watchHeap()
		b.StartTimer()
		metrics.Read(alloc)
		a0 := alloc[0].Value.Uint64()
		n := 0
		var firstAt time.Duration
		start := time.Now()
		label, err := query(ctx, e, i, func(AccessRow) bool {
			if n == 0 {
				firstAt = time.Since(start)
			}
			n++
			return true
		})
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			firstAt = time.Since(start)
		}
		total = append(total, time.Since(start))
		first = append(first, firstAt)
		rows = append(rows, float64(n))
		metrics.Read(alloc)
		bytes = append(bytes, float64(alloc[0].Value.Uint64()-a0))
		peaks = append(peaks, float64(peak())/(1<<20))
		if verbose {
			// Printed at once: a slow sub-benchmark's log would only
			// show when it ends.
			fmt.Fprintf(os.Stderr, "%s %s: first row %v, last %v, %d rows, %d B, heap peak +%.1f MiB\n",
				b.Name(), label, firstAt, total[len(total)-1], n, alloc[0].Value.Uint64()-a0, peaks[len(peaks)-1])
		}
		i++
	}
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
	ms := func(d []time.Duration) []float64 {
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x) / 1e6
		}
		return out
	}
	reportSpread(b, ms(first), "first-ms")
	reportSpread(b, ms(total), "total-ms")
	reportSpread(b, rows, "rows")
	reportSpread(b, bytes, "B")
	reportSpread(b, peaks, "heap-peak-MiB")
}

// watchHeap collects garbage, then samples the heap's objects every
// millisecond until the function it returns is called, which reports the
// most they grew past what they were at the start: what a query holds at
// its peak, plus the garbage not yet collected then (an upper bound of
// its live memory).
func watchHeap() (stop func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	done, result := make(chan struct{}), make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > base {
				peak = max(peak, v-base)
			}
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		return <-result
	}
}

// reportSpread reports the median and the largest of xs as unit-p50 and
// unit-max.
func reportSpread(b *testing.B, xs []float64, unit string) {
	if len(xs) == 0 {
		return
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	b.ReportMetric(s[len(s)/2], unit+"-p50")
	b.ReportMetric(s[len(s)-1], unit+"-max")
}

// BenchmarkLookupSubjectsIdentityPlatform runs the load test's
// LookupSubjects requests (its sampler, seed 4) in process, with the
// engine's default caches, which the first 64 lookups warm: who can read
// or write a resource, the users and agents cleared for a tier and the
// like. Besides the time it reports the subjects a lookup returns and the
// CPU time per 1,000 subjects returned, the load test's
// lookup-subjects-per-1k measure.
//
//	PEMBA_ACCESS_BENCH_SCALE=1 go test ./check/ -run XXX -bench LookupSubjectsIdentityPlatform -cpu 1 -benchtime 400x
func BenchmarkLookupSubjectsIdentityPlatform(b *testing.B) {
	w, reqs := identityPlatformLookups(b, 512)
	ctx := context.Background()
	e := New(Config{})
	lookup := func(q dataset.LookupSubjects) int {
		n := 0
		err := e.LookupSubjects(ctx, w.snap, LookupSubjectsRequest{Resource: q.Resource, Permission: q.Permission, SubjectType: q.SubjectType,
			Context: q.Context, Now: goldenNow}, func(SubjectResult) bool { n++; return true })
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	for _, q := range reqs[:64] {
		lookup(q)
	}
	subjects := 0
	cpu0 := cputime.Process()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		subjects += lookup(reqs[64+i%(len(reqs)-64)])
	}
	cpu := float64(cputime.Process() - cpu0)
	b.ReportMetric(float64(subjects)/float64(b.N), "subjects/op")
	b.ReportMetric(cpu/float64(b.N), "cpu-ns/op")
	if subjects > 0 {
		b.ReportMetric(cpu/float64(subjects)*1000/1e6, "cpu-ms/1k-subjects")
	}
}

// BenchmarkLookupSubjectsIdentityPlatformCold runs the load test's first
// 64 LookupSubjects requests (its sampler, seed 4) on a new engine each
// iteration, 8 at a time: what a server's first lookups cost before its
// subject-set cache holds the sets they share. It reports the slowest
// lookup and the CPU time per 1,000 subjects returned.
//
//	PEMBA_ACCESS_BENCH_SCALE=1 go test ./check/ -run XXX -bench LookupSubjectsIdentityPlatformCold -benchtime 5x
func BenchmarkLookupSubjectsIdentityPlatformCold(b *testing.B) {
	w, reqs := identityPlatformLookups(b, 64)
	ctx := context.Background()
	var subjects atomic.Int64
	var slowest []float64
	cpu0 := cputime.Process()
	for b.Loop() {
		e := New(Config{})
		next := atomic.Int64{}
		var mu sync.Mutex
		worst := time.Duration(0)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < len(reqs); i = int(next.Add(1)) - 1 {
					q := reqs[i]
					start := time.Now()
					err := e.LookupSubjects(ctx, w.snap, LookupSubjectsRequest{Resource: q.Resource, Permission: q.Permission, SubjectType: q.SubjectType,
						Context: q.Context, Now: goldenNow}, func(SubjectResult) bool { subjects.Add(1); return true })
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					worst = max(worst, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slowest = append(slowest, float64(worst)/1e6)
	}
	cpu := float64(cputime.Process() - cpu0)
	reportSpread(b, slowest, "slowest-ms")
	if n := subjects.Load(); n > 0 {
		b.ReportMetric(cpu/float64(n)*1000/1e6, "cpu-ms/1k-subjects")
	}
}

// identityPlatformLookups loads the identity-platform graph and draws the
// load test's first n LookupSubjects requests (its sampler, seed 4).
func identityPlatformLookups(b *testing.B, n int) (*benchWorld, []dataset.LookupSubjects) {
	w, scale := loadIdentityPlatform(b)
	d, err := dataset.New("identity-platform", dataset.Options{Scale: float64(scale), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	sampler := d.NewSampler(4)
	reqs := make([]dataset.LookupSubjects, n)
	for i := range reqs {
		reqs[i] = sampler.LookupSubjects()
	}
	return w, reqs
}
