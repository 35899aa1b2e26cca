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
)

// The access benchmarks run on the load test's nested-org data set at
// scale 1 (1000 users in 100 nested groups, 200 folders in a tree, 3000
// documents; about 12,000 relationships), seed 1.
var (
	accessOnce  sync.Once
	accessWorld *benchWorld
	// accessReview reads the graph with a schema that adds document#review.
	accessReview Snapshot
)

func loadAccessWorld(b *testing.B) *benchWorld {
	accessOnce.Do(func() {
		d, err := dataset.New("nested-org", dataset.Options{Scale: 1, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
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
		accessWorld = &benchWorld{store: store, snap: Snapshot{Schema: s, Reader: store.reader(b)}}
		// The same graph with a permission that is not monotone, which
		// the access walks do not answer: every row is checked.
		x, err := schema.Compile("nested-org-review.zed", strings.Replace(d.Schema(), "definition document {", "definition document {\n    permission review = view - owner", 1))
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
	benchWho(b, func(w *benchWorld) Snapshot { return w.snap }, "view")
}

// BenchmarkWhoCanAccessNestedOrgReview does the same for review = view -
// owner: a row per subject found by LookupSubjects, each checked.
func BenchmarkWhoCanAccessNestedOrgReview(b *testing.B) {
	benchWho(b, func(*benchWorld) Snapshot { return accessReview }, "review")
}

func benchWho(b *testing.B, snapOf func(*benchWorld) Snapshot, perm string) {
	w := loadAccessWorld(b)
	snap := snapOf(w)
	for _, ec := range accessEngines {
		b.Run(ec.name, func(b *testing.B) {
			e := New(ec.cfg)
			rng := rand.New(rand.NewPCG(5, 5))
			ctx := context.Background()
			rows := 0
			cpu0 := processCPU()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res := graph.ObjectRef{Type: "document", ID: fmt.Sprintf("d%d", rng.IntN(3000))}
				err := e.WhoCanAccess(ctx, snap, WhoRequest{Resource: res, Permissions: []string{perm}, Now: goldenNow},
					func(AccessRow) bool { rows++; return true })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkWhatCanAccessNestedOrg lists every document a random user can
// view, with paths and ends.
func BenchmarkWhatCanAccessNestedOrg(b *testing.B) {
	w := loadAccessWorld(b)
	for _, ec := range accessEngines {
		b.Run(ec.name, func(b *testing.B) {
			e := New(ec.cfg)
			rng := rand.New(rand.NewPCG(6, 6))
			ctx := context.Background()
			rows := 0
			cpu0 := processCPU()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				sub := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", rng.IntN(1000))}}
				err := e.WhatCanAccess(ctx, w.snap, WhatRequest{Subject: sub, ResourceTypes: []string{"document"}, Permissions: []string{"view"}, Now: goldenNow},
					func(AccessRow) bool { rows++; return true })
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
