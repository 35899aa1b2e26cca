package dataset

import (
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/golden"
	"github.com/pembadb/pemba/storage"
)

// TestGolden generates data sets and samples requests, comparing the
// counts, hashes and samples with testdata/*.txt. A changed hash means the
// same seed no longer gives the same graph: published figures would stop
// being reproducible.
//
//	generate dataset=NAME scale=N seed=S [long]
//	sample dataset=NAME scale=N seed=S n=K
func TestGolden(t *testing.T) {
	golden.RunFile(t, "testdata/datasets.txt", func(t *testing.T, c *golden.Case) string {
		if c.Input != "" {
			t.Fatalf("%s: %s takes no input, only key=value arguments", c.Pos, c.Command)
		}
		args := keyValues(c.Args)
		if _, long := args["long"]; long && testing.Short() && !*golden.Rewrite {
			return c.Expected
		}
		d, err := New(args["dataset"], Options{Scale: floatArg(t, c, args, "scale", 1), Seed: uint64(intArg(t, c, args, "seed", 1))})
		if err != nil {
			return "error: " + err.Error()
		}
		switch c.Command {
		case "generate":
			return describe(t, d)
		case "sample":
			return samples(d, intArg(t, c, args, "n", 3))
		default:
			t.Fatalf("%s: unknown command %q", c.Pos, c.Command)
			return ""
		}
	})
}

// keyValues maps each key=value argument's key to its value; an argument
// without = maps to "".
func keyValues(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

// intArg reads the integer argument key of case c, or def when it is
// absent.
func floatArg(t *testing.T, c *golden.Case, args map[string]string, key string, def float64) float64 {
	t.Helper()
	v, ok := args[key]
	if !ok {
		return def
	}
	var f float64
	if _, err := fmt.Sscanf(v, "%g", &f); err != nil {
		t.Fatalf("%s: %s=%q: %v", c.Pos, key, v, err)
	}
	return f
}

func intArg(t *testing.T, c *golden.Case, args map[string]string, key string, def int) int {
	t.Helper()
	v, ok := args[key]
	if !ok {
		return def
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
		t.Fatalf("%s: %s=%q: %v", c.Pos, key, v, err)
	}
	return n
}

// describe generates d once and reports its size, the count per
// resource#relation@subject-type, the first relationships and a hash of
// the whole stream. It fails the test on an invalid or duplicated
// relationship, or when Size disagrees with the stream.
func describe(t *testing.T, d Dataset) string {
	t.Helper()
	counts := map[string]int{}
	seen := make(map[uint64]struct{}, d.Size())
	sum := sha256.New()
	var first []string
	n := 0
	for r := range d.Relationships() {
		n++
		s := r.String()
		if len(first) < 3 {
			first = append(first, s)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: relationship %d %s: %v", d.Name(), n, s, err)
		}
		if err := storage.ValidateRelationship(r); err != nil {
			t.Fatalf("%s: relationship %d %s: %v", d.Name(), n, s, err)
		}
		k := fnv.New64a()
		k.Write([]byte(r.Key().String()))
		if _, dup := seen[k.Sum64()]; dup {
			t.Fatalf("%s: relationship %d %s: duplicate (or a hash collision)", d.Name(), n, s)
		}
		seen[k.Sum64()] = struct{}{}
		fmt.Fprintln(sum, s)
		counts[shape(r)]++
	}
	if n != d.Size() {
		t.Errorf("%s: Size() = %d, but %d relationships were generated", d.Name(), d.Size(), n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "relationships: %d\n", n)
	fmt.Fprintf(&b, "sha256: %x\n", sum.Sum(nil))
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %d\n", k, counts[k])
	}
	for _, s := range first {
		fmt.Fprintf(&b, "first: %s\n", s)
	}
	return b.String()
}

// shape is `type#relation@subject-type[#relation][ caveat][ expiring]`.
func shape(r graph.Relationship) string {
	s := r.Resource.Type + "#" + r.Relation + "@" + r.Subject.Object.Type
	if r.Subject.IsWildcard() {
		s += ":*"
	}
	if r.Subject.Relation != "" {
		s += "#" + r.Subject.Relation
	}
	if r.Caveat != nil {
		s += " " + r.Caveat.Name
	}
	if r.Expiration != nil {
		s += " expiring"
	}
	return s
}

// samples draws n of each request kind from two samplers with the same
// seed, failing on any difference, and prints the first sampler's draws.
func samples(d Dataset, n int) string {
	a, b := d.NewSampler(7), d.NewSampler(7)
	var out strings.Builder
	draw := func(kind string, f func(s *Sampler) string) {
		for range n {
			x, y := f(a), f(b)
			if x != y {
				fmt.Fprintf(&out, "NOT DETERMINISTIC %s: %s != %s\n", kind, x, y)
			}
			fmt.Fprintf(&out, "%s %s\n", kind, x)
		}
	}
	draw("check", func(s *Sampler) string { c := s.Check(); return c.String() + contextString(c.Context) })
	draw("hot", func(s *Sampler) string { return s.HotCheck().String() })
	draw("lookup-resources", func(s *Sampler) string {
		l := s.LookupResources()
		return l.ResourceType + "#" + l.Permission + "@" + l.Subject.String()
	})
	draw("lookup-subjects", func(s *Sampler) string {
		l := s.LookupSubjects()
		return l.Resource.String() + "#" + l.Permission + "@" + l.SubjectType
	})
	draw("expand", func(s *Sampler) string { e := s.Expand(); return e.Resource.String() + "#" + e.Permission })
	draw("write", func(s *Sampler) string { return s.Write().String() })
	ne := d.NewEnemy(3)
	for _, r := range ne.Setup {
		fmt.Fprintf(&out, "new-enemy setup %s\n", r)
	}
	fmt.Fprintf(&out, "new-enemy grant %s\nnew-enemy check %s\n", ne.Grant, ne.Check)
	return out.String()
}

func contextString(ctx map[string]any) string {
	if ctx == nil {
		return ""
	}
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, ctx[k]))
	}
	return " with " + strings.Join(parts, ",")
}

// TestHotCheckIsSkewed checks that check-hot concentrates on few pairs: the
// most frequent pair of 10000 draws must be drawn far more often than
// uniform sampling over the hot set would (once or twice).
func TestHotCheckIsSkewed(t *testing.T) {
	d, err := New(nestedOrgName, Options{Scale: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := d.NewSampler(1)
	freq := map[string]int{}
	top := 0
	for range 10000 {
		c := s.HotCheck().String()
		freq[c]++
		top = max(top, freq[c])
	}
	if top < 500 {
		t.Errorf("most frequent hot pair drawn %d times in 10000, want at least 500", top)
	}
	if len(freq) < 50 {
		t.Errorf("hot checks hit only %d distinct pairs, want at least 50", len(freq))
	}
}

// TestNewEnemyCasesAreDisjoint checks that workers' new-enemy objects never
// overlap, so one worker's revoke cannot explain another's answer.
func TestNewEnemyCasesAreDisjoint(t *testing.T) {
	for _, name := range Names() {
		d, err := New(name, Options{Scale: 1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for w := range 64 {
			ne := d.NewEnemy(w)
			for _, r := range append(ne.Setup, ne.Grant) {
				k := r.Key().String()
				if prev, ok := seen[k]; ok {
					t.Fatalf("%s: workers %d and %d share %s", name, prev, w, k)
				}
				seen[k] = w
			}
		}
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		scale float64
		want  string
	}{
		{"nested-org", 0, `dataset "nested-org": scale must be positive and at most 10000, got 0`},
		{"nested-org", -1, `dataset "nested-org": scale must be positive and at most 10000, got -1`},
		{"nested-org", 20000, `dataset "nested-org": scale must be positive and at most 10000, got 20000`},
		{"nope", 1, `dataset "nope": unknown (known: [identity-platform nested-org])`},
	} {
		_, err := New(tc.name, Options{Scale: tc.scale})
		if err == nil || err.Error() != tc.want {
			t.Errorf("New(%q, scale %g) = %v, want %q", tc.name, tc.scale, err, tc.want)
		}
	}
}
