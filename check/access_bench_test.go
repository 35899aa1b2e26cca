package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	"github.com/pembadb/pemba/schema"

	"github.com/pembadb/pemba/internal/cputime"
)

// The access benchmarks run on the load test's nested-org data set at
// scale 1 (1000 users in 100 nested groups, 200 folders in a tree, 3000
// documents; about 12,000 relationships), seed 1; the X100 ones at scale
// 100, built only when they run.
var (
	accessOnce  sync.Once
	accessWorld *benchWorld
	// accessReview reads the graph with a schema that adds document#review.
	accessReview Snapshot

	accessOnceX100  sync.Once
	accessWorldX100 *benchWorld
)

func loadAccessWorld(b *testing.B) *benchWorld {
	accessOnce.Do(func() {
		accessWorld = loadDataset(b, 1)
		// The same graph with a permission that subtracts: the access
		// walks cover its skeleton and check every row.
		x, err := schema.Compile("nested-org-review.zed", strings.Replace(nestedOrgDataset(b, 1).Schema(), "definition document {", "definition document {\n    permission review = view - owner", 1))
		if err != nil {
			b.Fatal(err)
		}
		accessReview = Snapshot{Schema: x, Reader: accessWorld.snap.Reader}
	})
	if accessWorld == nil {
		b.Fatal("nested-org data set failed to load")
	}
	return accessWorld
}

func loadAccessWorldX100(b *testing.B) *benchWorld {
	accessOnceX100.Do(func() { accessWorldX100 = loadDataset(b, 100) })
	if accessWorldX100 == nil {
		b.Fatal("nested-org data set failed to load")
	}
	return accessWorldX100
}

func nestedOrgDataset(b *testing.B, scale int) dataset.Dataset {
	d, err := dataset.New("nested-org", dataset.Options{Scale: float64(scale), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// loadDataset loads the nested-org data set at scale into a store that
// lives as long as the process.
func loadDataset(b *testing.B, scale int) *benchWorld {
	d := nestedOrgDataset(b, scale)
	s, err := schema.Compile("nested-org.zed", d.Schema())
	if err != nil {
		b.Fatal(err)
	}
	var rels []graph.Relationship
	for r := range d.Relationships() {
		rels = append(rels, r)
	}
	store := openTestStore(b)
	store.write(b, rels)
	return &benchWorld{store: store, snap: Snapshot{Schema: s, Reader: store.reader(b)}}
}

// accessEngines are the configurations the access benchmarks run with:
// no cache at all, and the defaults (both caches, kept across
// iterations as a server keeps them).
var accessEngines = []struct {
	name string
	cfg  Config
}{
	{"cold", Config{CacheEntries: -1, ReadCacheBytes: -1}},
	{"default", Config{}},
}

// BenchmarkWhoCanAccessNestedOrg lists everyone who can view a random
// document, with paths and ends.
func BenchmarkWhoCanAccessNestedOrg(b *testing.B) {
	w := loadAccessWorld(b)
	benchWho(b, w.snap, "view", 1)
}

// BenchmarkWhoCanAccessNestedOrgReview does the same for review = view -
// owner: the walk covers view, and a check decides each row.
func BenchmarkWhoCanAccessNestedOrgReview(b *testing.B) {
	loadAccessWorld(b)
	benchWho(b, accessReview, "review", 1)
}

// BenchmarkWhoCanAccessNestedOrgX100 lists everyone who can view a random
// document of the ×100 graph.
func BenchmarkWhoCanAccessNestedOrgX100(b *testing.B) {
	w := loadAccessWorldX100(b)
	benchWho(b, w.snap, "view", 100)
}

func benchWho(b *testing.B, snap Snapshot, perm string, scale int) {
	for _, ec := range accessEngines {
		b.Run(ec.name, func(b *testing.B) {
			e := New(ec.cfg)
			rng := rand.New(rand.NewPCG(5, 5))
			ctx := context.Background()
			rows := 0
			cpu0 := cputime.Process()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res := graph.ObjectRef{Type: "document", ID: fmt.Sprintf("d%d", rng.IntN(3000*scale))}
				err := e.WhoCanAccess(ctx, snap, WhoRequest{Resource: res, Permissions: []string{perm}, Now: goldenNow},
					func(AccessRow) bool { rows++; return true })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkWhatCanAccessNestedOrg lists every document a random user can
// view, with paths and ends.
func BenchmarkWhatCanAccessNestedOrg(b *testing.B) {
	w := loadAccessWorld(b)
	benchWhat(b, w.snap, 1)
}

// BenchmarkWhatCanAccessNestedOrgX100 does the same on the ×100 graph.
func BenchmarkWhatCanAccessNestedOrgX100(b *testing.B) {
	w := loadAccessWorldX100(b)
	benchWhat(b, w.snap, 100)
}

func benchWhat(b *testing.B, snap Snapshot, scale int) {
	for _, ec := range accessEngines {
		b.Run(ec.name, func(b *testing.B) {
			e := New(ec.cfg)
			rng := rand.New(rand.NewPCG(6, 6))
			ctx := context.Background()
			rows := 0
			cpu0 := cputime.Process()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				sub := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(1000*scale))}}
				err := e.WhatCanAccess(ctx, snap, WhatRequest{Subject: sub, ResourceTypes: []string{"document"}, Permissions: []string{"view"}, Now: goldenNow},
					func(AccessRow) bool { rows++; return true })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
