package dataset

import (
	"math/rand/v2"

	"github.com/pembadb/pemba/graph"
)

// Hot-set shape: check-hot draws pairs from a fixed set of hotPairs pairs
// with Zipf(s=hotSkew, v=1) popularity, so a few pairs dominate as in real
// traffic (the same page viewed by the same people over and over).
const (
	hotPairs = 10000
	hotSkew  = 1.1
)

// space is what a data set tells its Sampler: how to draw each request.
// Every method draws only from r, so a seeded Sampler is deterministic.
type space interface {
	check(r *rand.Rand) Check
	lookupResources(r *rand.Rand) LookupResources
	lookupSubjects(r *rand.Rand) LookupSubjects
	expand(r *rand.Rand) Expand
	write(r *rand.Rand) graph.Relationship
}

// Sampler draws requests over one data set's objects. It is not safe for
// concurrent use; give each worker its own.
type Sampler struct {
	rng   *rand.Rand
	hot   *rand.Zipf
	space space
}

func newSampler(s space, seed uint64) *Sampler {
	rng := newRand(seed, 0x5a3)
	return &Sampler{
		rng:   rng,
		hot:   rand.NewZipf(rng, hotSkew, 1, hotPairs-1),
		space: s,
	}
}

// Check draws a uniformly random check.
func (s *Sampler) Check() Check { return s.space.check(s.rng) }

// HotCheck draws a check from the Zipf-skewed hot set. The hot set depends
// only on the data set, not on the sampler's seed, so every worker hammers
// the same pairs.
func (s *Sampler) HotCheck() Check {
	return hotPair(s.space, s.hot.Uint64())
}

// hotPair returns pair i of the hot set (0 is the most popular).
func hotPair(sp space, i uint64) Check {
	return sp.check(newRand(i, 0x407))
}

// LookupResources draws a lookup-resources request.
func (s *Sampler) LookupResources() LookupResources { return s.space.lookupResources(s.rng) }

// LookupSubjects draws a lookup-subjects request.
func (s *Sampler) LookupSubjects() LookupSubjects { return s.space.lookupSubjects(s.rng) }

// Expand draws an expand request.
func (s *Sampler) Expand() Expand { return s.space.expand(s.rng) }

// Write draws a relationship of the data set's shape to touch (and later
// delete). Its subject is one of writerUsers users absent from the
// generated graph, so deleting it never removes a generated relationship
// and a reloaded graph stays the graph the seed describes.
func (s *Sampler) Write() graph.Relationship { return s.space.write(s.rng) }

// writerUsers is how many distinct users sampled writes grant to.
const writerUsers = 1000

// writerID draws the ID of a user that only sampled writes mention.
func writerID(r *rand.Rand) string { return id("writer-", r.IntN(writerUsers)) }

// Float64 draws from the sampler's source, for callers choosing among
// operations (the mixed workload) with the same determinism.
func (s *Sampler) Float64() float64 { return s.rng.Float64() }
