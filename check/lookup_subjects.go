package check

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// LookupSubjectsRequest asks which subjects of SubjectType (with
// SubjectRelation, "" for plain objects) have Permission on Resource.
type LookupSubjectsRequest struct {
	Resource        graph.ObjectRef
	Permission      string
	SubjectType     string
	SubjectRelation string
	Context         map[string]any
	Now             time.Time
}

// SubjectResult is one subject found by LookupSubjects. A wildcard
// (`user:*`) result means every subject of the type except Excluded.
type SubjectResult struct {
	Subject        graph.SubjectRef
	Permissionship Permissionship // HasPermission or Conditional
	Missing        []string
	// Excluded lists, for a wildcard, the subjects that do not have the
	// permission (NO_PERMISSION), sorted.
	Excluded []graph.SubjectRef
}

// LookupSubjects streams the subjects that have req.Permission on
// req.Resource, concrete subjects first (in the order they were found),
// then the wildcard, if every other subject of the type has it.
//
// It walks forward from the resource through every relation and arrow the
// permission can use (subtracted sides included, since they mention the
// subjects a wildcard excludes), collecting the subjects of the requested
// type, then checks each. A subject never mentioned there has the answer
// of a fresh, unused ID, which decides the wildcard.
//
// When the walk is exact (see subjectCandidates), a subject it reached
// over uncaveated relationships is streamed without a check: a monotone
// permission grants every subject at the end of such a chain, and a
// wildcard reached that way grants everyone. Only the subjects reached
// solely through caveated relationships are checked.
func (e *Engine) LookupSubjects(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, yield func(SubjectResult) bool) error {
	if err := validate(snap.Schema, req.Resource, req.Permission, graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: "x"}, Relation: req.SubjectRelation}); err != nil {
		return fmt.Errorf("lookup subjects: %w", err)
	}
	now := requestNow(req.Now)
	// Every subject with the permission holds each intersection's first
	// branch and each exclusion's base, so walking those alone meets it,
	// by its ID or through a wildcard. Only when a wildcard was met does
	// the answer need the subjects the other sides mention (a wildcard's
	// exclusions, or the concrete subjects an intersection narrows it to):
	// then the walk is repeated over everything.
	c, err := e.subjectCandidates(ctx, snap, req, now, true)
	if err == nil && c.wildcard && !c.exact {
		c, err = e.subjectCandidates(ctx, snap, req, now, false)
	}
	if err != nil {
		return fmt.Errorf("lookup subjects %s#%s@%s: %w", req.Resource.String(), req.Permission, req.SubjectType, err)
	}
	if len(c.ids) == 0 && !c.wildcard {
		return nil
	}
	// A check rejects a context that cannot be hashed; so does a lookup
	// that skips the checks.
	if _, err := contextHash(req.Context); err != nil {
		return fmt.Errorf("lookup subjects: %w", err)
	}
	granted := func(id string) bool {
		return c.exact && (c.wildcardClean || c.clean[id])
	}
	check := func(ctx context.Context, id string) (Result, error) {
		sub := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
		ev, err := e.newEvaluation(ctx, snap, sub, req.Context, now)
		if err != nil {
			return Result{}, err
		}
		defer e.release(ev)
		return ev.check(req.Resource, req.Permission, false)
	}
	// Candidates are checked a window at a time, on up to Concurrency
	// goroutines, and streamed in the order the walk met them.
	var excluded []graph.SubjectRef
	window := 16 * e.cfg.Concurrency
	results := make([]Result, min(window, len(c.ids)))
	for start := 0; start < len(c.ids); start += window {
		ids := c.ids[start:min(start+window, len(c.ids))]
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(e.cfg.Concurrency)
		for i, id := range ids {
			if granted(id) {
				continue
			}
			g.Go(func() error {
				r, err := check(gctx, id)
				results[i] = r
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("lookup subjects: %w", err)
		}
		for i, id := range ids {
			sub := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
			if granted(id) {
				if !yield(SubjectResult{Subject: sub, Permissionship: HasPermission}) {
					return nil
				}
				continue
			}
			r := results[i]
			if r.Permissionship == NoPermission {
				excluded = append(excluded, sub)
				continue
			}
			if !yield(SubjectResult{Subject: sub, Permissionship: r.Permissionship, Missing: r.Missing}) {
				return nil
			}
		}
	}
	if !c.wildcard {
		return nil
	}
	wild := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: graph.Wildcard}}
	if c.exact && c.wildcardClean {
		yield(SubjectResult{Subject: wild, Permissionship: HasPermission})
		return nil
	}
	// A fresh ID stands for every subject the walk did not meet.
	fresh := "unlisted"
	for i := 0; slices.Contains(c.ids, fresh); i++ {
		fresh = "unlisted" + strconv.Itoa(i)
	}
	r, err := check(ctx, fresh)
	if err != nil {
		return fmt.Errorf("lookup subjects: %w", err)
	}
	if r.Permissionship == NoPermission {
		return nil
	}
	slices.SortFunc(excluded, func(a, b graph.SubjectRef) int { return a.Compare(b) })
	yield(SubjectResult{Subject: wild, Permissionship: r.Permissionship, Missing: r.Missing, Excluded: excluded})
	return nil
}

// candidates is what the forward walk of LookupSubjects found.
type candidates struct {
	// ids are the subjects of the requested type met, deduplicated, in
	// the order met; wildcard: a wildcard of the type was met.
	ids      []string
	wildcard bool
	// exact: the permission is monotone and the walk met nothing a check
	// would judge differently from reachability except caveats, so every
	// subject in clean (reached over uncaveated relationships only) has
	// the permission, and so does everyone when wildcardClean.
	exact         bool
	clean         map[string]bool
	wildcardClean bool
}

// subjectCandidates walks forward from the resource and collects the
// subjects of the requested type met on the way. The walk is breadth
// first and reads the objects of one type#relation together, ChunkSize IDs
// per storage query. It visits each object#relation at most twice: once
// reached through a caveated relationship and again if it is later
// reached over uncaveated ones only ("clean").
//
// The result is exact (see candidates) when the permission is monotone
// (monotoneFrom), the subject relation is a relation (a subject set has
// itself; a permission is computed), and the walk met no relationship the
// schema does not allow (checks ignore those), no wildcard object in a
// subject set or arrow, and no chain longer than MaxDepth (which a check
// reports as an error).
//
// With primary set, the walk leaves out every intersection branch but the
// first and every exclusion's subtracted side (see LookupSubjects).
func (e *Engine) subjectCandidates(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, now time.Time, primary bool) (candidates, error) {
	s := snap.Schema
	ev, err := e.newEvaluation(ctx, snap, graph.SubjectRef{}, nil, now)
	if err != nil {
		return candidates{}, err
	}
	var c candidates
	reach, exact := monotoneFrom(s, req.Resource.Type, req.Permission)
	if req.SubjectRelation != "" && s.Definitions[req.SubjectType].Relations[req.SubjectRelation] == nil {
		exact = false
	}
	const (
		reached      = 1 // visited, through some caveated relationship
		reachedClean = 2 // visited over uncaveated relationships only
	)
	seen := make(map[node]uint8)
	candSeen := make(map[string]bool)
	addCand := func(id string, clean bool) {
		if id == graph.Wildcard {
			if req.SubjectRelation == "" {
				c.wildcard = true
				c.wildcardClean = c.wildcardClean || clean
			}
			return
		}
		if !candSeen[id] {
			candSeen[id] = true
			c.ids = append(c.ids, id)
		}
		if clean {
			if c.clean == nil {
				c.clean = make(map[string]bool)
			}
			c.clean[id] = true
		}
	}
	type group struct {
		typ, rel string
		clean    bool
		ids      []string
	}
	type groupKey struct {
		typ, rel string
		clean    bool
	}
	var frontier []group
	var index map[groupKey]int
	level := 1 // check depth of the objects visited now
	visit := func(typ, id, rel string, clean bool) {
		def := s.Definitions[typ]
		if def == nil || !def.Has(rel) {
			return
		}
		k := node{typ, id, rel}
		state := uint8(reached)
		if clean {
			state = reachedClean
		}
		if seen[k] >= state {
			return
		}
		seen[k] = state
		if exact && (id == graph.Wildcard || level > e.cfg.MaxDepth || !reach[[2]string{typ, rel}]) {
			exact = false
		}
		if typ == req.SubjectType && rel == req.SubjectRelation {
			addCand(id, clean)
		}
		if index == nil {
			index = make(map[groupKey]int)
		}
		gk := groupKey{typ, rel, clean}
		gi, ok := index[gk]
		if !ok {
			gi = len(frontier)
			index[gk] = gi
			frontier = append(frontier, group{typ: typ, rel: rel, clean: clean})
		}
		frontier[gi].ids = append(frontier[gi].ids, id)
	}
	visit(req.Resource.Type, req.Resource.ID, req.Permission, true)
	for len(frontier) > 0 {
		cur := frontier
		frontier, index = nil, nil
		level++
		for _, g := range cur {
			def := s.Definitions[g.typ]
			for start := 0; start < len(g.ids); start += e.cfg.ChunkSize {
				ids := g.ids[start:min(start+e.cfg.ChunkSize, len(g.ids))]
				if p := def.Permissions[g.rel]; p != nil {
					if err := walkExpr(p.Expr, primary, func(x schema.Expr) error {
						switch x := x.(type) {
						case *schema.RelationRef:
							for _, id := range ids {
								visit(g.typ, id, x.Name, g.clean)
							}
						case *schema.Arrow:
							return ev.query(storage.Filter{ResourceType: g.typ, ResourceIDs: ids, Relation: x.Tupleset}, func(r graph.Relationship) {
								visit(r.Subject.Object.Type, r.Subject.Object.ID, x.Target, g.clean && r.Caveat == nil)
							})
						}
						return nil
					}); err != nil {
						return candidates{}, err
					}
					continue
				}
				rdef := def.Relations[g.rel]
				if err := ev.query(storage.Filter{ResourceType: g.typ, ResourceIDs: ids, Relation: g.rel}, func(r graph.Relationship) {
					sub := r.Subject
					if exact && !allowedSubject(rdef, sub) {
						exact = false
					}
					clean := g.clean && r.Caveat == nil
					if sub.Relation == "" {
						if sub.Object.Type == req.SubjectType && req.SubjectRelation == "" {
							addCand(sub.Object.ID, clean)
						}
						return
					}
					visit(sub.Object.Type, sub.Object.ID, sub.Relation, clean)
				}); err != nil {
					return candidates{}, err
				}
			}
		}
	}
	c.exact = exact
	return c, nil
}

// allowedSubject reports whether relation r admits subject s as a check
// counts it: any plain object (checks match plain subjects by type and
// ID), a wildcard only where the relation allows one of its type, and a
// subject set only where the relation lists it.
func allowedSubject(r *schema.Relation, s graph.SubjectRef) bool {
	if s.Relation == "" {
		return s.Object.ID != graph.Wildcard || allowsWildcard(r, s.Object.Type)
	}
	for _, a := range r.Allowed {
		if a.Type == s.Object.Type && a.Relation == s.Relation {
			return true
		}
	}
	return false
}

// walkExpr calls fn for every leaf of an expression, or, with primary
// set, for the leaves of intersections' first branches and exclusions'
// bases only.
func walkExpr(x schema.Expr, primary bool, fn func(schema.Expr) error) error {
	switch x := x.(type) {
	case *schema.Union:
		for _, c := range x.Children {
			if err := walkExpr(c, primary, fn); err != nil {
				return err
			}
		}
	case *schema.Intersection:
		for i, c := range x.Children {
			if primary && i > 0 {
				break
			}
			if err := walkExpr(c, primary, fn); err != nil {
				return err
			}
		}
	case *schema.Exclusion:
		if err := walkExpr(x.Base, primary, fn); err != nil {
			return err
		}
		if primary {
			return nil
		}
		return walkExpr(x.Subtracted, primary, fn)
	default:
		return fn(x)
	}
	return nil
}
