package reach

import (
	"context"
	"fmt"
	"iter"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// BenchmarkBuildNestedOrg builds the index of the loadtest data set
// nested-org (group#member: users in a binary tree of nested groups) at
// the scales PEMBA_REACH_SCALES lists (default 1 and 10; 100 is 1M
// relationships, 1000 is 10M), from an on-disk store in a temporary
// directory, and reports the build's wall time, the heap it keeps and the
// index's own estimate of its memory. PEMBA_REACH_DIR names the data
// directory of a `pemba serve` that has loaded the data set instead (not
// serving meanwhile): the build reads it, schema and all.
func BenchmarkBuildNestedOrg(b *testing.B) {
	if dir := os.Getenv("PEMBA_REACH_DIR"); dir != "" {
		eng, err := pebble.Open(pebble.Options{Dir: dir, GCInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close()
		benchBuild(b, eng, nil)
		return
	}
	scales := []float64{1, 10}
	if v := os.Getenv("PEMBA_REACH_SCALES"); v != "" {
		scales = nil
		for _, f := range splitComma(v) {
			s, err := strconv.ParseFloat(f, 64)
			if err != nil {
				b.Fatalf("PEMBA_REACH_SCALES: %v", err)
			}
			scales = append(scales, s)
		}
	}
	for _, scale := range scales {
		b.Run(fmt.Sprintf("scale=%g", scale), func(b *testing.B) {
			ctx := context.Background()
			ds, err := dataset.New("nested-org", dataset.Options{Scale: scale, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			s, err := schema.Compile("nested-org.zed", ds.Schema())
			if err != nil {
				b.Fatal(err)
			}
			eng, err := pebble.Open(pebble.Options{Dir: b.TempDir(), GCInterval: -1, DisableAudit: true})
			if err != nil {
				b.Fatal(err)
			}
			defer eng.Close()
			start := time.Now()
			seq := func(yield func(graph.Relationship, error) bool) {
				for r := range ds.Relationships() {
					if !yield(r, nil) {
						return
					}
				}
			}
			res, err := eng.Import(ctx, iter.Seq2[graph.Relationship, error](seq), storage.ImportOptions{BatchSize: 10000})
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("imported %d relationships in %v", res.Imported, time.Since(start).Round(time.Millisecond))
			benchBuild(b, eng, s)
		})
	}
}

// benchBuild builds the index of eng's head b.N times and reports the
// last build. s nil reads the schema from the store.
func benchBuild(b *testing.B, eng storage.Engine, s *schema.Schema) {
	ctx := context.Background()
	rev, err := eng.HeadRevision(ctx)
	if err != nil {
		b.Fatal(err)
	}
	r, err := eng.SnapshotReader(ctx, rev)
	if err != nil {
		b.Fatal(err)
	}
	if s == nil {
		stored, err := r.ReadSchema(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if s, err = schema.Compile("stored.zed", stored.Text); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var ix *Index
	var before, after runtime.MemStats
	for range b.N {
		ix = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix = New(Options{})
		if err := ix.Build(ctx, s, r); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := ix.Stats()
	b.ReportMetric(float64(st.LastBuild.Milliseconds()), "build-ms")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(st.Bytes)/(1<<20), "est-MiB")
	b.ReportMetric(float64(st.Entries), "entries")
	b.ReportMetric(float64(st.Edges), "edges")
	runtime.KeepAlive(ix)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
