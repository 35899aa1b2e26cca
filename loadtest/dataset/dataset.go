package dataset

import (
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/pembadb/pemba/graph"
)

// Options choose one instance of a data set.
type Options struct {
	// Scale multiplies every object count (rounded, at least one of each
	// kind); it must be positive and at most MaxScale. Below 1 it makes a
	// small graph to try things in seconds (0.001 is a thousandth).
	Scale float64
	// Seed selects the pseudo-random choices (who is in which group, which
	// folder a document sits in, ...).
	Seed uint64
}

// Dataset is a generated graph: a schema and the relationships that follow it.
type Dataset interface {
	// Name is the name New accepts.
	Name() string
	// Schema is the schema text the relationships conform to.
	Schema() string
	// Size is the exact number of relationships Relationships yields.
	Size() int
	// Relationships yields every relationship, in a fixed order, without
	// duplicates. Each call starts again from the beginning.
	Relationships() iter.Seq[graph.Relationship]
	// NewSampler returns a request sampler seeded with seed.
	NewSampler(seed uint64) *Sampler
	// NewEnemy returns the objects worker uses in the new-enemy workload.
	// Its objects are disjoint from the generated graph and from every
	// other worker's, so only that worker's writes change the answer.
	NewEnemy(worker int) NewEnemyCase
}

// Check asks whether Subject has Permission on Resource.
type Check struct {
	Resource   graph.ObjectRef
	Permission string
	Subject    graph.SubjectRef
	// Context is the caveat context sent with the request, or nil.
	Context map[string]any
}

// String returns `resource#permission@subject`.
func (c Check) String() string {
	return c.Resource.String() + "#" + c.Permission + "@" + c.Subject.String()
}

// LookupResources asks for every ResourceType object on which Subject has
// Permission.
type LookupResources struct {
	ResourceType string
	Permission   string
	Subject      graph.SubjectRef
	Context      map[string]any
}

// LookupSubjects asks for every SubjectType subject that has Permission on
// Resource.
type LookupSubjects struct {
	Resource    graph.ObjectRef
	Permission  string
	SubjectType string
	Context     map[string]any
}

// Expand asks for the userset tree of Resource#Permission.
type Expand struct {
	Resource   graph.ObjectRef
	Permission string
}

// NewEnemyCase is one worker's revoke/re-grant cycle: Setup is written
// once; afterwards Check is granted exactly while Grant exists.
type NewEnemyCase struct {
	Setup []graph.Relationship
	Grant graph.Relationship
	Check Check
}

// generator builds one data set from options.
type generator func(Options) Dataset

var generators = map[string]generator{
	nestedOrgName:        newNestedOrg,
	identityPlatformName: newIdentityPlatform,
}

// Names lists the data sets New accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(generators))
	for n := range generators {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns the data set called name.
func New(name string, opts Options) (Dataset, error) {
	gen, ok := generators[name]
	if !ok {
		return nil, fmt.Errorf("dataset %q: unknown (known: %v)", name, Names())
	}
	if !(opts.Scale > 0 && opts.Scale <= MaxScale) {
		return nil, fmt.Errorf("dataset %q: scale must be positive and at most %d, got %g", name, MaxScale, opts.Scale)
	}
	return gen(opts), nil
}

// MaxScale bounds Options.Scale: ×10,000 is about ten billion relationships.
const MaxScale = 10000

// scaled is count times scale, rounded to a multiple of unit, and at
// least unit. Units keep the counts the generators' "every k-th object"
// rules and draws of distinct objects need; at a whole scale the result
// is exactly count times scale (count is a multiple of unit).
func scaled(count int, scale float64, unit int) int {
	return max(unit, int(math.Round(float64(count)*scale/float64(unit)))*unit)
}

// newRand returns the generator's random source for one purpose (stream),
// so adding draws to one part of a data set does not reshuffle the others.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// rel builds a relationship to a plain object subject.
func rel(resType, resID, relation, subType, subID string) graph.Relationship {
	return graph.Relationship{
		Resource: graph.ObjectRef{Type: resType, ID: resID},
		Relation: relation,
		Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: subType, ID: subID}},
	}
}

// subjectSet builds a relationship to the subject set subType:subID#subRel.
func subjectSet(resType, resID, relation, subType, subID, subRel string) graph.Relationship {
	r := rel(resType, resID, relation, subType, subID)
	r.Subject.Relation = subRel
	return r
}

// distinct draws k distinct integers in [0, n) (k <= n), in draw order.
func distinct(r *rand.Rand, k, n int) []int {
	out := make([]int, 0, k)
	for len(out) < k {
		v := r.IntN(n)
		dup := false
		for _, o := range out {
			if o == v {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// id formats an object ID: a prefix and a number.
func id(prefix string, n int) string { return prefix + strconv.Itoa(n) }
