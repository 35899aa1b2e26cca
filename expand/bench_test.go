package expand

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
	"github.com/pembadb/pemba/storage/readcache"

	"github.com/pembadb/pemba/internal/cputime"
)

// BenchmarkExpandIdentityPlatform expands the load test's expand requests
// (read on a random resource) on the identity-platform data set, about
// 1.04M relationships per unit of scale, seed 1, in an in-memory store.
// Building it takes a while, so the benchmark is skipped unless
// PEMBA_EXPAND_BENCH_SCALE names the scale:
//
//	PEMBA_EXPAND_BENCH_SCALE=1 go test ./expand -run XXX -bench ExpandIdentityPlatform -benchtime 200x
//
// Each iteration expands the next of the sampled requests, full and
// shallow, through a read cache as the server does; besides the mean the benchmark reports the median, p99 and
// largest time, the CPU time per expansion, the largest tree (nodes) and
// how many trees were too large (ErrTooLarge, DefaultMaxNodes).
func BenchmarkExpandIdentityPlatform(b *testing.B) {
	v := os.Getenv("PEMBA_EXPAND_BENCH_SCALE")
	if v == "" {
		b.Skip("set PEMBA_EXPAND_BENCH_SCALE (e.g. 1) to build the identity-platform graph")
	}
	w := loadExpandWorld(b, v)
	for _, shallow := range []bool{false, true} {
		b.Run("shallow="+strconv.FormatBool(shallow), func(b *testing.B) {
			// Through a read cache, as the server's engine reads.
			r := readcache.New(readcache.Config{}).Reader(w.r)
			sampler := w.d.NewSampler(7)
			oversize := NewOversize(0)
			var times []time.Duration
			largest, tooLarge, sumNodes, okCount := 0, 0, 0, 0
			b.ResetTimer()
			cpu0 := cputime.Process()
			for range b.N {
				q := sampler.Expand()
				start := time.Now()
				n, err := Expand(context.Background(), w.s, r, q.Resource, q.Permission, Options{Shallow: shallow, Oversize: oversize})
				times = append(times, time.Since(start))
				switch {
				case err == nil:
					largest = max(largest, n.size())
					sumNodes += n.size()
					okCount++
				case errors.Is(err, ErrTooLarge):
					tooLarge++
				default:
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cputime.Process()-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1e3, "p50-ms")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1e3, "p99-ms")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1e3, "max-ms")
			b.ReportMetric(float64(largest), "max-nodes")
			b.ReportMetric(float64(tooLarge), "too-large")
			b.ReportMetric(float64(sumNodes)/float64(max(okCount, 1)), "avg-nodes")
		})
	}
}

type expandWorld struct {
	d dataset.Dataset
	s *schema.Schema
	r storage.Reader
}

var (
	expandOnce        sync.Once
	loadedExpandWorld *expandWorld
)

func loadExpandWorld(b *testing.B, v string) *expandWorld {
	expandOnce.Do(func() {
		scale, err := strconv.Atoi(v)
		if err != nil || scale < 1 {
			b.Fatalf("PEMBA_EXPAND_BENCH_SCALE=%q: want a scale of at least 1", v)
		}
		d, err := dataset.New("identity-platform", dataset.Options{Scale: float64(scale), Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		s, err := schema.Compile("identity_platform.zed", d.Schema())
		if err != nil {
			b.Fatal(err)
		}
		eng, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1, DisableAudit: true})
		if err != nil {
			b.Fatal(err)
		}
		rels := func(yield func(graph.Relationship, error) bool) {
			for r := range d.Relationships() {
				if !yield(r, nil) {
					return
				}
			}
		}
		if _, err := eng.Import(context.Background(), rels, storage.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		head, err := eng.HeadRevision(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		r, err := eng.SnapshotReader(context.Background(), head)
		if err != nil {
			b.Fatal(err)
		}
		loadedExpandWorld = &expandWorld{d: d, s: s, r: r}
	})
	if loadedExpandWorld == nil {
		b.Fatal("identity-platform data set failed to load")
	}
	return loadedExpandWorld
}

// size counts n's nodes.
func (n *Node) size() int {
	total := 1
	for _, c := range n.Children {
		total += c.size()
	}
	return total
}
