package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestAccessReferenceModel compares WhoCanAccess, WhatCanAccess and
// EndsAt with the reference model (reference_test.go) on random worlds:
//
//   - who and what list exactly the (resource, permission, subject)
//     triples the model grants, with its permissionship and missing
//     parameters (a wildcard row stands for every subject of its type it
//     does not list or exclude);
//   - every row's path is connected from the subject to the resource's
//     permission, its relationships exist and are live, and, where the
//     permission has no exclusion, the path's relationships alone grant
//     it in the model;
//   - every row's end is the first of the world's expiration instants at
//     which the model no longer grants (zero if none);
//   - paging by cursor with a random limit gives the same rows.
func TestAccessReferenceModel(t *testing.T) {
	rng := referenceRNG(t, 2)
	now := goldenNow
	ctx := context.Background()
	// Half the worlds are monotone (unions and arrows only), which
	// WhoCanAccess and WhatCanAccess answer from one walk.
	forEachWorld(t, rng, now, worldOptions{monotone: true, spread: true}, func(w *testWorld) bool {
		rctx := randomRequestContext(rng)
		// The third answers every permission a window of subjects at a
		// time, the windows halved when their sets outgrow a few entries.
		windowed := New(Config{})
		windowed.bounds = accessBounds{walkNodes: rng.IntN(2), setEntries: 1 + rng.IntN(24), windowSubjects: 1 + rng.IntN(4)}
		engines := []*Engine{New(Config{CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true}), New(Config{ChunkSize: 2}), windowed}
		e := engines[rng.IntN(3)]
		a := &accessCheck{t: t, s: w.s, src: w.src, rels: w.rels, ids: w.ids, ctx: rctx, now: now, store: w.store, world: w.n,
			truth: map[refTruthKey]map[refKey]refValue{}, e: e, snap: w.snap}
		a.who(ctx, e, w.snap, rng)
		a.what(ctx, e, w.snap, rng)
		return !a.failed
	})
}

// accessCheck is one random world under test.
type accessCheck struct {
	t      *testing.T
	s      *schema.Schema
	src    string
	rels   []graph.Relationship
	ids    map[string][]string
	ctx    map[string]any
	now    time.Time
	store  *testStore
	world  int
	failed bool
	// truth memoizes the model's answers per subject and instant.
	truth map[refTruthKey]map[refKey]refValue
	e     *Engine
	snap  Snapshot
}

type refTruthKey struct {
	subject graph.SubjectRef
	at      time.Time
}

func (a *accessCheck) fail(format string, args ...any) {
	a.t.Helper()
	if !a.failed {
		var b strings.Builder
		fmt.Fprintf(&b, "world %d:\nschema:\n%s\nrelationships:\n", a.world, a.src)
		for _, r := range a.rels {
			b.WriteString(r.String() + "\n")
		}
		fmt.Fprintf(&b, "context: %v\n", a.ctx)
		a.t.Error(b.String())
	}
	a.failed = true
	a.t.Errorf(format, args...)
}

// model returns the model's answers for subject at instant at.
func (a *accessCheck) model(subject graph.SubjectRef, at time.Time) map[refKey]refValue {
	k := refTruthKey{subject, at}
	if v, ok := a.truth[k]; ok {
		return v
	}
	w := &refWorld{s: a.s, rels: a.rels, ids: a.ids, ctx: a.ctx, now: at}
	v := w.solve(subject)
	a.truth[k] = v
	return v
}

// modelEnd is the model's end of an access granted at now: the first
// expiration instant after now at which it is no longer granted.
func (a *accessCheck) modelEnd(subject graph.SubjectRef, k refKey) time.Time {
	var instants []time.Time
	for _, r := range a.rels {
		if r.Expiration != nil && r.Expiration.After(a.now) {
			instants = append(instants, *r.Expiration)
		}
	}
	slices.SortFunc(instants, func(x, y time.Time) int { return x.Compare(y) })
	for _, at := range slices.Compact(instants) {
		if a.model(subject, at)[k].perm == NoPermission {
			return at
		}
	}
	return time.Time{}
}

// plainSubjects lists every plain object of the world, and a user no
// relationship names.
func (a *accessCheck) plainSubjects() []graph.SubjectRef {
	var out []graph.SubjectRef
	for _, typ := range a.s.DefinitionOrder {
		for _, id := range a.ids[typ] {
			out = append(out, graph.SubjectRef{Object: graph.ObjectRef{Type: typ, ID: id}})
		}
	}
	return append(out, graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u9"}})
}

// allNames lists every relation and permission name of the schema.
func (a *accessCheck) allNames() []string {
	var names []string
	for _, typ := range a.s.DefinitionOrder {
		names = append(names, a.s.Definitions[typ].Order...)
	}
	return sortedUnique(names)
}

func (a *accessCheck) who(ctx context.Context, e *Engine, snap Snapshot, rng *rand.Rand) {
	for _, typ := range []string{"team", "folder", "doc"} {
		def := a.s.Definitions[typ]
		for _, id := range a.ids[typ] {
			res := graph.ObjectRef{Type: typ, ID: id}
			req := WhoRequest{Resource: res, Context: a.ctx, Now: a.now}
			perms := defaultPermissions(def)
			if rng.IntN(2) == 0 {
				req.Permissions = slices.Clone(def.Order)
				perms = sortedUnique(def.Order)
			}
			rows, err := collect(func(y func(AccessRow) bool) error { return e.WhoCanAccess(ctx, snap, req, y) })
			if err != nil {
				a.fail("who %s: %v", res, err)
				continue
			}
			if !slices.IsSortedFunc(rows, func(x, y AccessRow) int {
				return strings.Compare(x.Permission+" "+x.Subject.Object.Type+" "+x.Subject.Object.ID, y.Permission+" "+y.Subject.Object.Type+" "+y.Subject.Object.ID)
			}) {
				a.fail("who %s: rows out of order", res)
			}
			// Index the rows: concrete ones by subject, wildcards by type.
			type key struct {
				perm string
				sub  graph.SubjectRef
			}
			concrete := map[key]AccessRow{}
			wild := map[key]AccessRow{}
			for _, r := range rows {
				if r.Resource != res || r.Subject.Relation != "" {
					a.fail("who %s: row %s", res, rowString(r))
				}
				if r.Subject.Object.ID == graph.Wildcard {
					wild[key{r.Permission, graph.SubjectRef{Object: graph.ObjectRef{Type: r.Subject.Object.Type}}}] = r
					a.checkRow(r, graph.SubjectRef{Object: graph.ObjectRef{Type: r.Subject.Object.Type, ID: "u9"}})
					continue
				}
				concrete[key{r.Permission, r.Subject}] = r
				a.checkRow(r, r.Subject)
			}
			for _, perm := range perms {
				for _, sub := range a.plainSubjects() {
					want := a.model(sub, a.now)[refKey{typ, id, perm}]
					got := refValue{}
					r, ok := concrete[key{perm, sub}]
					if !ok {
						w, wok := wild[key{perm, graph.SubjectRef{Object: graph.ObjectRef{Type: sub.Object.Type}}}]
						if wok && !slices.Contains(w.Excluded, sub.Object.ID) {
							r, ok = w, true
						}
					}
					if ok {
						got = refValue{perm: r.Permissionship, missing: strings.Join(r.Missing, ",")}
					}
					if got != want {
						a.fail("who %s#%s: %s is %v, want %v", res, perm, sub, got, want)
					}
				}
			}
			a.paging(rows, func(after *AccessCursor, y func(AccessRow) bool) error {
				req.After = after
				return e.WhoCanAccess(ctx, snap, req, y)
			}, rng, "who "+res.String())
		}
	}
}

func (a *accessCheck) what(ctx context.Context, e *Engine, snap Snapshot, rng *rand.Rand) {
	subjects := []graph.SubjectRef{}
	for _, id := range []string{"u1", "u2", "u3", "u9"} {
		subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: id}})
	}
	for _, id := range a.ids["team"] {
		subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "team", ID: id}, Relation: "member"})
	}
	subjects = append(subjects, graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: "f1"}})
	for _, sub := range subjects {
		req := WhatRequest{Subject: sub, Context: a.ctx, Now: a.now}
		all := rng.IntN(2) == 0
		if all {
			req.Permissions = a.allNames()
		}
		rows, err := collect(func(y func(AccessRow) bool) error { return e.WhatCanAccess(ctx, snap, req, y) })
		if err != nil {
			a.fail("what %s: %v", sub, err)
			continue
		}
		if !slices.IsSortedFunc(rows, func(x, y AccessRow) int {
			return strings.Compare(x.Resource.Type+" "+x.Permission+" "+x.Resource.ID, y.Resource.Type+" "+y.Permission+" "+y.Resource.ID)
		}) {
			a.fail("what %s: rows out of order", sub)
		}
		got := map[refKey]refValue{}
		for _, r := range rows {
			if r.Subject != sub {
				a.fail("what %s: row %s", sub, rowString(r))
			}
			got[refKey{r.Resource.Type, r.Resource.ID, r.Permission}] = refValue{perm: r.Permissionship, missing: strings.Join(r.Missing, ",")}
			a.checkRow(r, sub)
		}
		val := a.model(sub, a.now)
		for _, typ := range a.s.DefinitionOrder {
			def := a.s.Definitions[typ]
			names := defaultPermissions(def)
			if all {
				names = def.Order
			}
			for _, name := range names {
				for _, id := range a.ids[typ] {
					k := refKey{typ, id, name}
					if got[k] != val[k] {
						a.fail("what %s: %s:%s#%s is %v, want %v", sub, typ, id, name, got[k], val[k])
					}
				}
			}
		}
		a.paging(rows, func(after *AccessCursor, y func(AccessRow) bool) error {
			req.After = after
			return e.WhatCanAccess(ctx, snap, req, y)
		}, rng, "what "+sub.String())
	}
}

// checkRow checks a row's path and end; sub is the subject the model
// evaluates for it (for a wildcard row, one no relationship names).
func (a *accessCheck) checkRow(r AccessRow, sub graph.SubjectRef) {
	a.t.Helper()
	k := refKey{r.Resource.Type, r.Resource.ID, r.Permission}
	want := a.modelEnd(sub, k)
	if !r.EndsAt.Equal(want) {
		a.fail("%s: ends %v, the model says %v", rowString(r), r.EndsAt, want)
	}
	// EndsAt, which evaluates again at each expiration, agrees.
	ends, granted, err := a.e.EndsAt(context.Background(), a.snap, Request{Resource: r.Resource, Permission: r.Permission, Subject: sub, Context: a.ctx, Now: a.now})
	if err != nil || !granted || !ends.Equal(want) {
		a.fail("%s: EndsAt says %v (granted %v, %v), the model %v", rowString(r), ends, granted, err, want)
	}
	if r.Path == nil {
		a.fail("%s: no path", rowString(r))
		return
	}
	if err := verifyChain(r.Path, r.Subject, r.Resource, r.Permission); err != nil {
		a.fail("%s: %v", rowString(r), err)
	}
	if err := a.store.verifyPath(r.Path, a.now); err != nil {
		a.fail("%s: %v", rowString(r), err)
	}
	if (len(r.Path.Caveats) > 0) != slices.Contains(r.Holdings, HoldingCaveated) {
		a.fail("%s: caveats %v, holdings %v", rowString(r), r.Path.Caveats, r.Holdings)
	}
	if exclusionFree(a.s, r.Resource.Type, r.Permission) {
		// The path's relationships alone prove the access.
		w := &refWorld{s: a.s, rels: pathRelationships(r.Path), ids: a.ids, ctx: a.ctx, now: a.now}
		got := w.solve(sub)[k]
		if got.perm == NoPermission || (r.Permissionship == HasPermission && got.perm != HasPermission) {
			a.fail("%s: the path's relationships alone give %v", rowString(r), got)
		}
	}
}

// paging reads the rows again, a random number at a time, each call
// resumed after the last row by its encoded cursor, and compares.
func (a *accessCheck) paging(rows []AccessRow, run func(*AccessCursor, func(AccessRow) bool) error, rng *rand.Rand, what string) {
	limit := 1 + rng.IntN(3)
	var paged []AccessRow
	var after *AccessCursor
	for page := 0; page <= len(rows); page++ {
		n := 0
		err := run(after, func(r AccessRow) bool {
			c, err := DecodeAccessCursor(r.Cursor.Encode())
			if err != nil {
				a.fail("%s: cursor: %v", what, err)
				return false
			}
			after = &c
			paged = append(paged, r)
			n++
			return n < limit
		})
		if err != nil {
			a.fail("%s limit %d: %v", what, limit, err)
			return
		}
		if n < limit {
			break
		}
	}
	if rowsString(paged) != rowsString(rows) {
		a.fail("%s limit %d: pages\n%s\none call\n%s", what, limit, rowsString(paged), rowsString(rows))
	}
}

func rowsString(rows []AccessRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(rowString(r))
	}
	return b.String()
}

func collect(run func(func(AccessRow) bool) error) ([]AccessRow, error) {
	var rows []AccessRow
	err := run(func(r AccessRow) bool {
		rows = append(rows, r)
		return true
	})
	return rows, err
}

// verifyChain checks that p is connected: each chain starts at the
// subject (a relationship naming it or a wildcard of its type, or the
// subject set itself), every step follows from the one before (a
// relationship naming it as a subject set, an arrow from it, or a
// permission computed on the same object), the main chain ends at
// res#perm, and each other chain ends on an object of its parent chain.
func verifyChain(p *Path, sub graph.SubjectRef, res graph.ObjectRef, perm string) error {
	if len(p.Steps) == 0 {
		return fmt.Errorf("empty path")
	}
	if last := p.Steps[len(p.Steps)-1]; last.Object != res || last.Relation != perm {
		return fmt.Errorf("path ends at %s#%s", last.Object, last.Relation)
	}
	return verifyLinks(p, sub)
}

func verifyLinks(p *Path, sub graph.SubjectRef) error {
	for i, s := range p.Steps {
		var prev *Step
		if i > 0 {
			prev = &p.Steps[i-1]
		}
		r := s.Relationship
		switch {
		case s.Via != "":
			if r == nil || prev == nil {
				return fmt.Errorf("step %d: arrow %s without a relationship or an object before it", i, s.Via)
			}
			target := arrowTarget(s.Via)
			if r.Resource != s.Object || r.Subject.Object != prev.Object || prev.Relation != target {
				return fmt.Errorf("step %d: arrow %s over %s does not follow %s#%s", i, s.Via, r, prev.Object, prev.Relation)
			}
		case r != nil:
			if r.Resource != s.Object || r.Relation != s.Relation {
				return fmt.Errorf("step %d: relationship %s is not %s#%s", i, r, s.Object, s.Relation)
			}
			if prev == nil {
				if r.Subject != sub && !(sub.Relation == "" && r.Subject.Relation == "" && r.Subject.Object.Type == sub.Object.Type && r.Subject.Object.ID == graph.Wildcard) {
					return fmt.Errorf("step 0: relationship %s does not name %s", r, sub)
				}
			} else if r.Subject != (graph.SubjectRef{Object: prev.Object, Relation: prev.Relation}) {
				return fmt.Errorf("step %d: relationship %s does not name %s#%s", i, r, prev.Object, prev.Relation)
			}
		default:
			switch {
			case prev == nil:
				if s.Object != sub.Object || s.Relation != sub.Relation {
					return fmt.Errorf("step 0: %s#%s is not the subject %s", s.Object, s.Relation, sub)
				}
			case prev.Object != s.Object:
				return fmt.Errorf("step %d: %s#%s is computed on another object than %s", i, s.Object, s.Relation, prev.Object)
			}
		}
	}
	for _, x := range p.Also {
		if err := verifyLinks(x, sub); err != nil {
			return fmt.Errorf("and-chain: %w", err)
		}
		end := x.Steps[len(x.Steps)-1].Object
		if !slices.ContainsFunc(p.Steps, func(s Step) bool { return s.Object == end }) {
			return fmt.Errorf("and-chain ends at %s, off its parent chain", end)
		}
	}
	return nil
}

// arrowTarget returns the target relation of "tupleset->target" or
// "tupleset.all(target)".
func arrowTarget(via string) string {
	if _, t, ok := strings.Cut(via, "->"); ok {
		return t
	}
	_, t, _ := strings.Cut(via, "(")
	return strings.TrimSuffix(t, ")")
}

// pathRelationships lists the relationships of every chain of p.
func pathRelationships(p *Path) []graph.Relationship {
	var out []graph.Relationship
	for _, s := range p.Steps {
		if s.Relationship != nil {
			out = append(out, *s.Relationship)
		}
	}
	for _, x := range p.Also {
		out = append(out, pathRelationships(x)...)
	}
	return out
}

// exclusionFree reports whether typ#rel uses no exclusion, through every
// relation, subject set and arrow it can reach: then more relationships
// never take it away, and a path's relationships alone grant it.
func exclusionFree(s *schema.Schema, typ, rel string) bool {
	seen := map[[2]string]bool{}
	var walk func(typ, rel string) bool
	var expr func(def *schema.Definition, x schema.Expr) bool
	walk = func(typ, rel string) bool {
		k := [2]string{typ, rel}
		def := s.Definitions[typ]
		if seen[k] || def == nil {
			return true
		}
		seen[k] = true
		if p := def.Permissions[rel]; p != nil {
			return expr(def, p.Expr)
		}
		if r := def.Relations[rel]; r != nil {
			for _, a := range r.Allowed {
				if a.Relation != "" && !walk(a.Type, a.Relation) {
					return false
				}
			}
		}
		return true
	}
	expr = func(def *schema.Definition, x schema.Expr) bool {
		switch x := x.(type) {
		case *schema.Union:
			return !slices.ContainsFunc(x.Children, func(c schema.Expr) bool { return !expr(def, c) })
		case *schema.Intersection:
			return !slices.ContainsFunc(x.Children, func(c schema.Expr) bool { return !expr(def, c) })
		case *schema.RelationRef:
			return walk(def.Name, x.Name)
		case *schema.Arrow:
			if r := def.Relations[x.Tupleset]; r != nil {
				for _, a := range r.Allowed {
					if !walk(a.Type, x.Target) {
						return false
					}
				}
			}
			return true
		case *schema.Nil:
			return true
		}
		return false
	}
	return walk(typ, rel)
}

// randomMonotoneWorld generates a random schema of unions, relations,
// subject sets and arrows only, recursive through team#member and
// folder#parent, with caveats and wildcards.
func randomMonotoneWorld(rng *rand.Rand) (string, map[string][]string) {
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
	union := func(leaves ...string) string {
		return strings.Join(subset(leaves...), " + ")
	}
	var b strings.Builder
	b.WriteString("caveat cav(x int) {\n  x > 5\n}\n\ndefinition user {}\n\n")
	b.WriteString("definition team {\n")
	fmt.Fprintf(&b, "  relation member: %s\n", strings.Join(subset("user", "team#member", "user with cav", "user:*"), " | "))
	fmt.Fprintf(&b, "  relation lead: %s\n", strings.Join(subset("user", "user with cav", "team#member"), " | "))
	fmt.Fprintf(&b, "  permission mgr = %s\n}\n\n", union("lead", "member"))
	userish := func() string {
		return strings.Join(subset("user", "team#member", "user:*", "user with cav", "team#mgr"), " | ")
	}
	b.WriteString("definition folder {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", strings.Join(subset("folder", "folder with cav"), " | "))
	fmt.Fprintf(&b, "  relation viewer: %s\n", userish())
	fmt.Fprintf(&b, "  relation editor: %s\n", userish())
	fmt.Fprintf(&b, "  permission pera = %s\n", union("viewer", "parent->pera", "editor", "parent->perb"))
	fmt.Fprintf(&b, "  permission perb = %s\n}\n\n", union("editor", "parent->perb", "viewer"))
	b.WriteString("definition doc {\n")
	fmt.Fprintf(&b, "  relation parent: %s\n", strings.Join(subset("folder", "folder with cav"), " | "))
	b.WriteString("  relation team: team\n")
	fmt.Fprintf(&b, "  relation viewer: %s\n", userish())
	fmt.Fprintf(&b, "  permission pera = %s\n", union("viewer", "parent->pera", "team->member", "team->mgr", "parent->perb"))
	fmt.Fprintf(&b, "  permission perb = %s\n}\n", union("pera", "viewer", "parent.any(perb)", "team->mgr"))
	ids := map[string][]string{"user": {"u1", "u2", "u3"}, "team": {"t1", "t2", "t3"}, "folder": {"f1", "f2", "f3"}, "doc": {"d1", "d2", "d3"}}
	return b.String(), ids
}
