package check

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// The reference model: a brute-force evaluator that computes, for one
// subject, the value of every relation and permission of every object of
// a small world as the least fixed point of the schema's equations over
// all relationships (three-valued: no < conditional < yes), and the
// engine must agree with it on random schemas and data.
//
// Semantics (as SpiceDB's): a relation holds for a subject through a
// relationship naming it exactly, a wildcard of its type (plain subjects
// only), or a subject set whose relation holds; a subject set has itself;
// a caveated relationship counts as its caveat's outcome for the merged
// context; `.all` needs at least one related object and every related
// object to grant (a caveated relationship: its caveat and the object); an arrow ignores the subject relation of the tupleset.
// Generated schemas never recurse through the subtracted side of an
// exclusion (stratified), where a least fixed point would not exist.

// refValue is a three-valued answer with missing caveat parameters.
type refValue struct {
	perm    Permissionship
	missing string // sorted, comma-joined
}

type refWorld struct {
	s    *schema.Schema
	rels []graph.Relationship
	ids  map[string][]string // object IDs per type
	ctx  map[string]any
	now  time.Time
}

func (w *refWorld) caveat(r graph.Relationship) refValue {
	if r.Caveat == nil {
		return refValue{perm: HasPermission}
	}
	ctx := map[string]any{}
	for k, v := range w.ctx {
		ctx[k] = v
	}
	for k, v := range r.Caveat.Context {
		ctx[k] = v
	}
	o, err := w.s.Caveats[r.Caveat.Name].Evaluate(ctx)
	if err != nil {
		panic(err)
	}
	switch {
	case !o.Decided():
		m := slices.Sorted(slices.Values(o.Missing))
		return refValue{perm: Conditional, missing: strings.Join(m, ",")}
	case o.Satisfied:
		return refValue{perm: HasPermission}
	}
	return refValue{perm: NoPermission}
}

func refOr(a, b refValue) refValue {
	switch {
	case a.perm == HasPermission || b.perm == HasPermission:
		return refValue{perm: HasPermission}
	case a.perm == Conditional && b.perm == Conditional:
		return refValue{perm: Conditional, missing: joinMissing(a.missing, b.missing)}
	case a.perm == Conditional:
		return a
	}
	return b
}

func refAnd(a, b refValue) refValue {
	switch {
	case a.perm == NoPermission || b.perm == NoPermission:
		return refValue{}
	case a.perm == Conditional || b.perm == Conditional:
		return refValue{perm: Conditional, missing: joinMissing(a.missing, b.missing)}
	}
	return refValue{perm: HasPermission}
}

func refNot(a refValue) refValue {
	switch a.perm {
	case HasPermission:
		return refValue{}
	case NoPermission:
		return refValue{perm: HasPermission}
	}
	return a
}

func joinMissing(a, b string) string {
	var m []string
	for _, s := range []string{a, b} {
		if s != "" {
			m = append(m, strings.Split(s, ",")...)
		}
	}
	slices.Sort(m)
	return strings.Join(slices.Compact(m), ",")
}

type refKey struct{ typ, id, rel string }

// solve returns the value of every (object, relation) for subject.
func (w *refWorld) solve(subject graph.SubjectRef) map[refKey]refValue {
	val := map[refKey]refValue{}
	var live []graph.Relationship
	for _, r := range w.rels {
		if r.Expiration == nil || r.Expiration.After(w.now) {
			live = append(live, r)
		}
	}
	get := func(typ, id, rel string) refValue { return val[refKey{typ, id, rel}] }
	var expr func(typ, id string, x schema.Expr) refValue
	expr = func(typ, id string, x schema.Expr) refValue {
		switch x := x.(type) {
		case *schema.Nil:
			return refValue{}
		case *schema.RelationRef:
			return get(typ, id, x.Name)
		case *schema.Union:
			v := refValue{}
			for _, c := range x.Children {
				v = refOr(v, expr(typ, id, c))
			}
			return v
		case *schema.Intersection:
			v := expr(typ, id, x.Children[0])
			for _, c := range x.Children[1:] {
				v = refAnd(v, expr(typ, id, c))
			}
			return v
		case *schema.Exclusion:
			return refAnd(expr(typ, id, x.Base), refNot(expr(typ, id, x.Subtracted)))
		case *schema.Arrow:
			exists, all := refValue{}, refValue{perm: HasPermission}
			for _, r := range live {
				if r.Resource.Type != typ || r.Resource.ID != id || r.Relation != x.Tupleset {
					continue
				}
				c := w.caveat(r)
				t := refValue{}
				if d := w.s.Definitions[r.Subject.Object.Type]; d != nil && d.Has(x.Target) {
					t = get(r.Subject.Object.Type, r.Subject.Object.ID, x.Target)
				}
				if x.Func == schema.ArrowAny {
					exists = refOr(exists, refAnd(c, t))
				} else {
					exists = refValue{perm: HasPermission}
					all = refAnd(all, refAnd(c, t))
				}
			}
			if x.Func == schema.ArrowAny {
				return exists
			}
			return refAnd(exists, all)
		}
		panic(fmt.Sprintf("expr %T", x))
	}
	for iter := 0; ; iter++ {
		if iter > 1000 {
			panic("reference model does not converge")
		}
		changed := false
		for _, typ := range w.s.DefinitionOrder {
			def := w.s.Definitions[typ]
			for _, id := range w.ids[typ] {
				for _, name := range def.Order {
					var v refValue
					if p := def.Permissions[name]; p != nil {
						v = expr(typ, id, p.Expr)
					} else {
						if subject.Relation == name && subject.Object.Type == typ && subject.Object.ID == id {
							v = refValue{perm: HasPermission}
						}
						for _, r := range live {
							if r.Resource.Type != typ || r.Resource.ID != id || r.Relation != name {
								continue
							}
							s := r.Subject
							switch {
							case s == subject:
								v = refOr(v, w.caveat(r))
							case s.Relation == "" && s.Object.ID == graph.Wildcard && subject.Relation == "" && s.Object.Type == subject.Object.Type:
								v = refOr(v, w.caveat(r))
							case s.Relation != "":
								if d := w.s.Definitions[s.Object.Type]; d != nil && d.Has(s.Relation) {
									v = refOr(v, refAnd(w.caveat(r), get(s.Object.Type, s.Object.ID, s.Relation)))
								}
							}
						}
					}
					k := refKey{typ, id, name}
					if val[k] != v {
						val[k] = v
						changed = true
					}
				}
			}
		}
		if !changed {
			return val
		}
	}
}

// randomWorld generates a random schema and relationships. Recursion goes
// through team#member (subject sets) and folder#parent (arrows); a
// permission's subtracted side never reaches the permission itself.
func randomWorld(rng *rand.Rand) (string, []string, map[string][]string) {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	subset := func(xs ...string) []string {
		var out []string
		for _, x := range xs {
			if rng.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		if len(out) == 0 {
			out = append(out, xs[0])
		}
		return out
	}
	var b strings.Builder
	b.WriteString("caveat cav(x int) {\n  x > 5\n}\n\ndefinition user {}\n\n")
	b.WriteString("definition team {\n")
	fmt.Fprintf(&b, "  relation member: %s\n", strings.Join(subset("user", "team#member", "user with cav", "user:*"), " | "))
	fmt.Fprintf(&b, "  relation lead: %s\n", strings.Join(subset("user", "user with cav"), " | "))
	fmt.Fprintf(&b, "  permission mgr = %s\n}\n\n", pick("lead", "member & lead", "member - lead", "lead + member"))

	userish := func() string {
		return strings.Join(subset("user", "team#member", "user:*", "user with cav", "team#mgr"), " | ")
	}
	// expression generator: leaves(pos) lists leaves allowed in a
	// positive position, leaves(neg) in a subtracted one.
	var gen func(depth int, pos, neg []string, negative bool) string
	gen = func(depth int, pos, neg []string, negative bool) string {
		leaves := pos
		if negative {
			leaves = neg
		}
		if depth == 0 || rng.IntN(3) == 0 {
			return leaves[rng.IntN(len(leaves))]
		}
		switch rng.IntN(4) {
		case 0, 1:
			return "(" + gen(depth-1, pos, neg, negative) + " + " + gen(depth-1, pos, neg, negative) + ")"
		case 2:
			return "(" + gen(depth-1, pos, neg, negative) + " & " + gen(depth-1, pos, neg, negative) + ")"
		}
		return "(" + gen(depth-1, pos, neg, negative) + " - " + gen(depth-1, pos, neg, true) + ")"
	}
	b.WriteString("definition folder {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", pick("folder", "folder", "folder | folder with cav"))
	fmt.Fprintf(&b, "  relation viewer: %s\n", userish())
	fmt.Fprintf(&b, "  relation banned: %s\n", strings.Join(subset("user", "team#member", "user:*"), " | "))
	base := []string{"viewer", "banned", "nil"}
	fmt.Fprintf(&b, "  permission pera = %s\n", gen(2, append([]string{"parent->pera", "parent.all(pera)"}, base...), base, false))
	withPa := append([]string{"pera", "parent->pera", "parent.all(perb)"}, base...)
	fmt.Fprintf(&b, "  permission perb = %s\n}\n\n", gen(2, withPa, append([]string{"pera", "parent->pera"}, base...), false))

	b.WriteString("definition doc {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", pick("folder", "folder | folder with cav"))
	b.WriteString("  relation team: team\n")
	fmt.Fprintf(&b, "  relation viewer: %s\n", userish())
	fmt.Fprintf(&b, "  relation banned: %s\n", strings.Join(subset("user", "team#member", "user:*"), " | "))
	dleaves := []string{"viewer", "banned", "parent->pera", "parent->perb", "parent.all(pera)", "team->member", "team->mgr", "nil"}
	fmt.Fprintf(&b, "  permission pera = %s\n", gen(3, dleaves, dleaves, false))
	fmt.Fprintf(&b, "  permission perb = %s\n}\n", gen(2, append([]string{"pera"}, dleaves...), append([]string{"pera"}, dleaves...), false))

	ids := map[string][]string{"user": {"u1", "u2", "u3"}, "team": {"t1", "t2", "t3"}, "folder": {"f1", "f2", "f3"}, "doc": {"d1", "d2", "d3"}}
	return b.String(), nil, ids
}

// randomRelationships writes random relationships allowed by s.
func randomRelationships(rng *rand.Rand, s *schema.Schema, ids map[string][]string, now time.Time) []graph.Relationship {
	var rels []graph.Relationship
	seen := map[graph.Key]bool{}
	for _, typ := range s.DefinitionOrder {
		def := s.Definitions[typ]
		for _, name := range def.Order {
			r := def.Relations[name]
			if r == nil {
				continue
			}
			for n := rng.IntN(5); n > 0; n-- {
				a := r.Allowed[rng.IntN(len(r.Allowed))]
				sub := graph.SubjectRef{Object: graph.ObjectRef{Type: a.Type, ID: ids[a.Type][rng.IntN(len(ids[a.Type]))]}, Relation: a.Relation}
				if a.Wildcard {
					sub.Object.ID = graph.Wildcard
				}
				rel := graph.Relationship{Resource: graph.ObjectRef{Type: typ, ID: ids[typ][rng.IntN(len(ids[typ]))]}, Relation: name, Subject: sub}
				if seen[rel.Key()] {
					continue
				}
				seen[rel.Key()] = true
				if a.Caveat != "" {
					rel.Caveat = &graph.Caveat{Name: a.Caveat}
					switch rng.IntN(3) {
					case 0:
						rel.Caveat.Context = map[string]any{"x": 9}
					case 1:
						rel.Caveat.Context = map[string]any{"x": 2}
					}
				}
				switch rng.IntN(8) {
				case 0:
					t := now.Add(-time.Hour)
					rel.Expiration = &t
				case 1:
					t := now.Add(time.Hour)
					rel.Expiration = &t
				}
				rels = append(rels, rel)
			}
		}
	}
	return rels
}

func referenceIterations(t *testing.T) int {
	if v := os.Getenv("PEMBA_REFERENCE_ITERATIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("PEMBA_REFERENCE_ITERATIONS: %v", err)
		}
		return n
	}
	if testing.Short() || raceEnabled {
		return 20
	}
	return 60
}

// TestReferenceModel compares Check, LookupResources and LookupSubjects
// with the reference model on random worlds, with and without the cache.
func TestReferenceModel(t *testing.T) {
	runReference(t, randomWorld)
}

// TestReferenceModelRecursive is TestReferenceModel on schemas whose
// folder permissions are answered from the subject's reverse closure
// (unions of plain relations, arrows to plain relations of other types,
// and arrows back to themselves over random, often cyclic, parent
// chains), and whose other relations reach subjects only some subject
// types can hold.
func TestReferenceModelRecursive(t *testing.T) {
	runReference(t, recursiveWorld)
}

// TestReferenceModelSweep is TestReferenceModel and
// TestReferenceModelRecursive with LookupSubjects' narrowed set
// evaluations reading every relation by subject (readNarrowed) and
// pruning by the objects found upward from all their subjects at once
// (reachedBy), and LookupResources reading the lists of every walk in
// walk order (reverseWalk.drain) instead of merging them, which small
// worlds otherwise never do.
func TestReferenceModelSweep(t *testing.T) {
	defer func(n narrowTuning, m int) { defaultNarrowing, maxMergeStreams = n, m }(defaultNarrowing, maxMergeStreams)
	defaultNarrowing, maxMergeStreams = narrowTuning{sweepMin: 1, reachedMin: 1, reachedRatio: 1 << 20}, 0
	runReference(t, randomWorld)
	runReference(t, recursiveWorld)
}

// recursiveWorld generates a schema for TestReferenceModelRecursive.
func recursiveWorld(rng *rand.Rand) (string, []string, map[string][]string) {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	var b strings.Builder
	b.WriteString("caveat cav(x int) {\n  x > 5\n}\n\ndefinition user {}\n\n")
	b.WriteString("definition team {\n")
	fmt.Fprintf(&b, "  relation member: %s\n", pick("user | team#member", "user with cav | team#member"))
	b.WriteString("  relation lead: user | user:*\n  relation sub: team\n")
	fmt.Fprintf(&b, "  permission mgr = %s\n}\n\n", pick("lead + sub->mgr", "lead", "member + sub->mgr", "lead + sub->member"))
	b.WriteString("definition folder {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", pick("folder", "folder", "folder | folder with cav"))
	b.WriteString("  relation link: folder\n  relation owner: team\n")
	fmt.Fprintf(&b, "  relation viewer: %s\n", pick("user", "user | user:*", "user | team#member", "team"))
	b.WriteString("  relation banned: user\n")
	// `pera = viewer + parent->pera + link->perb` recurses through perb's
	// exclusion base: a batch of folders asks for its own members' pera
	// inside another frame's cycle.
	fmt.Fprintf(&b, "  permission pera = %s\n", pick("viewer + parent->pera", "viewer + banned + parent->pera + link->pera",
		"(viewer + parent->pera) + link->pera", "banned + link->pera",
		"banned + owner->lead + parent->pera", "owner->lead + link->pera + parent->pera", "viewer + parent->pera + link->perb"))
	fmt.Fprintf(&b, "  permission perb = %s\n}\n\n", pick("banned + parent->perb", "pera - banned", "pera & banned", "viewer->mgr + parent->perb"))
	b.WriteString("definition doc {\n")
	b.WriteString("  relation parent: folder\n  relation team: team\n  relation viewer: user\n  relation banned: user\n")
	fmt.Fprintf(&b, "  permission pera = %s\n", pick("parent->pera - banned", "parent->perb & viewer", "team->mgr + parent->pera", "viewer & team->mgr"))
	fmt.Fprintf(&b, "  permission perb = %s\n}\n", pick("pera + team->member", "(pera & parent->perb) - banned", "parent->pera"))
	ids := map[string][]string{"user": {"u1", "u2", "u3"}, "team": {"t1", "t2", "t3"}, "folder": {"f1", "f2", "f3"}, "doc": {"d1", "d2", "d3"}}
	return b.String(), nil, ids
}

// runReference compares Check, LookupResources and LookupSubjects with the
// reference model on worlds drawn by gen, with and without the cache.
func runReference(t *testing.T, gen func(*rand.Rand) (string, []string, map[string][]string)) {
	rng := referenceRNG(t, 1)
	now := goldenNow
	ctx := context.Background()
	worlds, rejected := 0, 0
	for worlds < referenceIterations(t) {
		src, _, ids := gen(rng)
		s, err := schema.Compile("random.zed", src)
		if err != nil {
			// e.g. a wildcard through a subject set; draw again, but a
			// generator whose schemas never compile is a bug.
			if rejected++; rejected > 100*(worlds+1) {
				t.Fatalf("random schemas keep failing to compile: %v", err)
			}
			continue
		}
		worlds++
		rels := randomRelationships(rng, s, ids, now)
		store := newTestStore(t)
		store.write(t, rels)
		snap := Snapshot{Schema: s, Reader: store.reader(t)}
		rctx := randomRequestContext(rng)
		w := &refWorld{s: s, rels: rels, ids: ids, ctx: rctx, now: now}
		engines := []*Engine{New(Config{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true}), New(Config{ChunkSize: 2}),
			newClusterEngine(snap, Config{ChunkSize: 2})}
		describe := func() string {
			var b strings.Builder
			fmt.Fprintf(&b, "schema:\n%s\nrelationships:\n", src)
			for _, r := range rels {
				b.WriteString(r.String() + "\n")
			}
			fmt.Fprintf(&b, "context: %v\n", rctx)
			return b.String()
		}
		subjects := []graph.SubjectRef{}
		for _, id := range append(slices.Clone(ids["user"]), "u9") {
			subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
		}
		for _, id := range ids["team"] {
			subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "team", ID: id}, Relation: "member"})
		}
		truth := map[graph.SubjectRef]map[refKey]refValue{}
		for _, sub := range subjects {
			truth[sub] = w.solve(sub)
		}
		failed := false
		fail := func(format string, args ...any) {
			if !failed {
				t.Errorf("world %d:\n%s", worlds, describe())
			}
			failed = true
			t.Errorf(format, args...)
		}
		for _, sub := range subjects {
			val := truth[sub]
			for _, typ := range []string{"team", "folder", "doc"} {
				def := s.Definitions[typ]
				for _, name := range def.Order {
					for _, id := range ids[typ] {
						want := val[refKey{typ, id, name}]
						for ei, e := range engines {
							for pass := 0; pass < 2; pass++ {
								r, err := e.Check(ctx, snap, Request{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: name, Subject: sub, Context: rctx, Now: now, Explain: pass == 1 && ei == 0})
								got := refValue{perm: r.Permissionship, missing: strings.Join(r.Missing, ",")}
								if err != nil || got != want {
									fail("check %s:%s#%s@%s engine %d pass %d: got %v %v, want %v", typ, id, name, sub, ei, pass, got, err, want)
								}
								if pass == 1 && ei == 0 && r.Permissionship != NoPermission {
									if r.Path == nil {
										fail("check %s:%s#%s@%s: %v without a path", typ, id, name, sub, r.Permissionship)
									} else if err := store.verifyPath(r.Path, now); err != nil {
										fail("check %s:%s#%s@%s: path %s: %v", typ, id, name, sub, r.Path, err)
									}
								}
								if pass == 1 && ei == 0 && err == nil && r.Permissionship == NoPermission {
									// The denial's failures are failures by the reference.
									ref := func(obj graph.ObjectRef, rel string) (Permissionship, error) {
										return val[refKey{obj.Type, obj.ID, rel}].perm, nil
									}
									req := Request{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: name, Subject: sub, Context: rctx, Now: now}
									if r.Denial == nil {
										fail("check %s:%s#%s@%s: denied without a denial", typ, id, name, sub)
									} else if err := verifyDenial(ctx, ref, snap, req, r.Denial); err != nil {
										fail("check %s:%s#%s@%s: denial %s: %v", typ, id, name, sub, r.Denial, err)
									}
								}
							}
						}
					}
					// LookupResources agrees with the reference (and so with Check).
					got := map[string]Permissionship{}
					err := engines[rng.IntN(2)].LookupResources(ctx, snap, LookupResourcesRequest{ResourceType: typ, Permission: name, Subject: sub, Context: rctx, Now: now}, func(r ResourceResult) bool {
						if _, dup := got[r.ID]; dup {
							fail("lookup resources %s#%s@%s: %s twice", typ, name, sub, r.ID)
						}
						got[r.ID] = r.Permissionship
						return true
					})
					if err != nil {
						fail("lookup resources %s#%s@%s: %v", typ, name, sub, err)
					}
					for _, id := range ids[typ] {
						if want := val[refKey{typ, id, name}].perm; got[id] != want {
							fail("lookup resources %s#%s@%s: %s is %v, want %v", typ, name, sub, id, got[id], want)
						}
					}
					// Paged with cursors, it finds the same, each once. One
					// engine serves every page: a walk-order cursor replays
					// a walk whose order depends on the engine's ChunkSize.
					pages := map[string]Permissionship{}
					preq := LookupResourcesRequest{ResourceType: typ, Permission: name, Subject: sub, Context: rctx, Now: now, Limit: 1 + rng.IntN(3)}
					pager := engines[rng.IntN(2)]
					for page := 0; page <= len(got); page++ {
						n := 0
						err := pager.LookupResources(ctx, snap, preq, func(r ResourceResult) bool {
							if _, dup := pages[r.ID]; dup {
								fail("lookup resources %s#%s@%s limit %d: %s twice", typ, name, sub, preq.Limit, r.ID)
							}
							pages[r.ID] = r.Permissionship
							preq.Cursor = r.Cursor
							n++
							return true
						})
						if err != nil {
							fail("lookup resources %s#%s@%s limit %d page %d: %v", typ, name, sub, preq.Limit, page, err)
						}
						if n > preq.Limit {
							fail("lookup resources %s#%s@%s limit %d: a page of %d", typ, name, sub, preq.Limit, n)
						}
						if err != nil || n < preq.Limit {
							break
						}
					}
					if !maps.Equal(pages, got) {
						fail("lookup resources %s#%s@%s limit %d: pages found %v, one call %v", typ, name, sub, preq.Limit, pages, got)
					}
				}
			}
		}
		// LookupSubjects agrees with the reference for every subject.
		for _, typ := range []string{"team", "folder", "doc"} {
			def := s.Definitions[typ]
			for _, name := range def.Order {
				for _, id := range ids[typ] {
					for _, st := range [][2]string{{"user", ""}, {"team", "member"}} {
						found, err := lookupSubjectsFound(ctx, engines[rng.IntN(2)], snap, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: name, SubjectType: st[0], SubjectRelation: st[1], Context: rctx, Now: now})
						if err != nil {
							fail("lookup subjects %s:%s#%s@%s: %v", typ, id, name, st, err)
							continue
						}
						for _, sub := range subjects {
							if sub.Object.Type != st[0] {
								continue
							}
							want := truth[sub][refKey{typ, id, name}].perm
							if got := found.of(sub); got != want {
								fail("lookup subjects %s:%s#%s@%s: %s is %v, want %v", typ, id, name, st, sub, got, want)
							}
						}
					}
				}
			}
		}
		if failed {
			return
		}
	}
}

// subjectsFound is what a LookupSubjects streamed: the subjects it named,
// with their permissionship, and its wildcard, if any.
type subjectsFound struct {
	concrete map[string]Permissionship
	wild     *SubjectResult
}

// lookupSubjectsFound runs req on e and collects what it streams.
func lookupSubjectsFound(ctx context.Context, e *Engine, snap Snapshot, req LookupSubjectsRequest) (subjectsFound, error) {
	f := subjectsFound{concrete: map[string]Permissionship{}}
	err := e.LookupSubjects(ctx, snap, req, func(r SubjectResult) bool {
		if r.Subject.Object.ID == graph.Wildcard {
			f.wild = &r
		} else {
			f.concrete[r.Subject.Object.ID] = r.Permissionship
		}
		return true
	})
	return f, err
}

// of returns sub's permissionship in f: its own, else the wildcard's
// unless the wildcard excludes it.
func (f subjectsFound) of(sub graph.SubjectRef) Permissionship {
	if got, ok := f.concrete[sub.Object.ID]; ok {
		return got
	}
	if f.wild != nil && !slices.Contains(f.wild.Excluded, sub) {
		return f.wild.Permissionship
	}
	return NoPermission
}

// TestCycleAcrossFrames is the world where a lookup's batched check of
// folders [f1 f2 f3]#perb missed f2: f2's pera rests on f1's pera (an
// assumption of the pera frame) and on f2's perb (one of the outer perb
// frame), so its answer's Low named only the outer frame and the pera
// frame never re-evaluated with f1 granted.
func TestCycleAcrossFrames(t *testing.T) {
	s, err := schema.Compile("cycle.zed", `caveat cav(x int) {
  x > 5
}
definition user {}
definition folder {
  relation parent: folder | folder with cav
  relation link: folder
  relation viewer: user
  relation banned: user
  permission pera = viewer + parent->pera + link->perb
  permission perb = pera - banned
}`)
	if err != nil {
		t.Fatal(err)
	}
	snap := storeOf(t, s, `folder:f2#parent@folder:f1[cav:{"x":9}]`, "folder:f3#link@folder:f1", "folder:f2#link@folder:f2",
		"folder:f1#viewer@user:u1", "folder:f1#banned@user:u1")
	u1 := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u1"}}
	for _, cfg := range []Config{{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true}, {}, {ChunkSize: 2}} {
		var found []string
		err := New(cfg).LookupResources(context.Background(), snap, LookupResourcesRequest{ResourceType: "folder", Permission: "perb", Subject: u1, Now: goldenNow},
			func(r ResourceResult) bool {
				found = append(found, r.ID+" "+r.Permissionship.String())
				return true
			})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"f2 HAS_PERMISSION"}; !slices.Equal(found, want) {
			t.Errorf("chunk size %d: lookup of folder#perb for u1 found %v, want %v", cfg.ChunkSize, found, want)
		}
	}
}
