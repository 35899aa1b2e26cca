package check

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

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
func (e *Engine) LookupSubjects(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, yield func(SubjectResult) bool) error {
	if err := validate(snap.Schema, req.Resource, req.Permission, graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: "x"}, Relation: req.SubjectRelation}); err != nil {
		return fmt.Errorf("lookup subjects: %w", err)
	}
	now := requestNow(req.Now)
	cands, wildcard, err := e.subjectCandidates(ctx, snap, req, now)
	if err != nil {
		return fmt.Errorf("lookup subjects %s#%s@%s: %w", objectString(req.Resource), req.Permission, req.SubjectType, err)
	}
	check := func(id string) (Result, error) {
		sub := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
		ev, err := e.newEvaluation(ctx, snap, sub, req.Context, now)
		if err != nil {
			return Result{}, err
		}
		return ev.check(req.Resource, req.Permission, false)
	}
	var excluded []graph.SubjectRef
	for _, id := range cands {
		r, err := check(id)
		if err != nil {
			return fmt.Errorf("lookup subjects: %w", err)
		}
		sub := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
		if r.Permissionship == NoPermission {
			excluded = append(excluded, sub)
			continue
		}
		if !yield(SubjectResult{Subject: sub, Permissionship: r.Permissionship, Missing: r.Missing}) {
			return nil
		}
	}
	if !wildcard {
		return nil
	}
	// A fresh ID stands for every subject the walk did not meet.
	fresh := "unlisted"
	for i := 0; slices.Contains(cands, fresh); i++ {
		fresh = "unlisted" + strconv.Itoa(i)
	}
	r, err := check(fresh)
	if err != nil {
		return fmt.Errorf("lookup subjects: %w", err)
	}
	if r.Permissionship == NoPermission {
		return nil
	}
	slices.SortFunc(excluded, func(a, b graph.SubjectRef) int { return a.Compare(b) })
	yield(SubjectResult{Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: graph.Wildcard}},
		Permissionship: r.Permissionship, Missing: r.Missing, Excluded: excluded})
	return nil
}

// subjectCandidates walks forward from the resource and returns the IDs of
// subjects of the requested type met on the way (deduplicated, in the order
// met) and whether a wildcard of the type was met.
func (e *Engine) subjectCandidates(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, now time.Time) ([]string, bool, error) {
	s := snap.Schema
	ev, err := e.newEvaluation(ctx, snap, graph.SubjectRef{}, nil, now)
	if err != nil {
		return nil, false, err
	}
	seen := make(map[node]bool)
	candSeen := make(map[string]bool)
	var cands []string
	wildcard := false
	addCand := func(id string) {
		if id == graph.Wildcard {
			wildcard = wildcard || req.SubjectRelation == ""
			return
		}
		if !candSeen[id] {
			candSeen[id] = true
			cands = append(cands, id)
		}
	}
	type group struct {
		typ, rel string
		ids      []string
	}
	var frontier []group
	var index map[[2]string]int
	visit := func(typ, id, rel string) {
		def := s.Definitions[typ]
		if def == nil || !def.Has(rel) {
			return
		}
		k := node{typ, id, rel}
		if seen[k] {
			return
		}
		seen[k] = true
		if typ == req.SubjectType && rel == req.SubjectRelation {
			addCand(id)
		}
		if index == nil {
			index = make(map[[2]string]int)
		}
		gi, ok := index[[2]string{typ, rel}]
		if !ok {
			gi = len(frontier)
			index[[2]string{typ, rel}] = gi
			frontier = append(frontier, group{typ: typ, rel: rel})
		}
		frontier[gi].ids = append(frontier[gi].ids, id)
	}
	visit(req.Resource.Type, req.Resource.ID, req.Permission)
	for len(frontier) > 0 {
		cur := frontier
		frontier, index = nil, nil
		for _, g := range cur {
			def := s.Definitions[g.typ]
			for start := 0; start < len(g.ids); start += e.cfg.ChunkSize {
				ids := g.ids[start:min(start+e.cfg.ChunkSize, len(g.ids))]
				if p := def.Permissions[g.rel]; p != nil {
					if err := walkExpr(p.Expr, func(x schema.Expr) error {
						switch x := x.(type) {
						case *schema.RelationRef:
							for _, id := range ids {
								visit(g.typ, id, x.Name)
							}
						case *schema.Arrow:
							return ev.query(storage.Filter{ResourceType: g.typ, ResourceIDs: ids, Relation: x.Tupleset}, func(r graph.Relationship) {
								visit(r.Subject.Object.Type, r.Subject.Object.ID, x.Target)
							})
						}
						return nil
					}); err != nil {
						return nil, false, err
					}
					continue
				}
				if err := ev.query(storage.Filter{ResourceType: g.typ, ResourceIDs: ids, Relation: g.rel}, func(r graph.Relationship) {
					sub := r.Subject
					if sub.Relation == "" {
						if sub.Object.Type == req.SubjectType && req.SubjectRelation == "" {
							addCand(sub.Object.ID)
						}
						return
					}
					visit(sub.Object.Type, sub.Object.ID, sub.Relation)
				}); err != nil {
					return nil, false, err
				}
			}
		}
	}
	return cands, wildcard, nil
}

// walkExpr calls fn for every leaf of an expression.
func walkExpr(x schema.Expr, fn func(schema.Expr) error) error {
	switch x := x.(type) {
	case *schema.Union:
		for _, c := range x.Children {
			if err := walkExpr(c, fn); err != nil {
				return err
			}
		}
	case *schema.Intersection:
		for _, c := range x.Children {
			if err := walkExpr(c, fn); err != nil {
				return err
			}
		}
	case *schema.Exclusion:
		if err := walkExpr(x.Base, fn); err != nil {
			return err
		}
		return walkExpr(x.Subtracted, fn)
	default:
		return fn(x)
	}
	return nil
}
