package check

import (
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// reachedMax bounds the objects reachedBy collects before it gives up
// and the evaluation evaluates every object it is asked about.
const reachedMax = 1 << 16

// reachedBy returns the objects of typ whose relation or permission rel
// may hold one of the subjects the evaluation is narrowed to, found
// upward from those subjects as a check's reverse closure is (see
// closureFor), for every subject at once: the objects whose seed
// relations name one of them (the rows readNarrowed reads anyway, see
// sweep) or a wildcard of their type, the objects their arrows to plain
// relations lead from, and every object above those through the
// permission's steps (from the reachability index where it answers,
// else by reverse reads level by level). A subject in a team of 4,000
// cleared for a tier is in a few of them and the teams above those:
// the others' sets are empty without reading their sub-teams.
//
// The answer may hold more objects than hold a subject (caveated and
// expired relationships count), never fewer. ok is false when rel has no
// such shape (relation plain or recursive, permission a recursive union,
// see recursivePermission), the objects pass reachedMax, or those found
// first (before the steps) are more than half of the pending objects
// they would prune: the subjects are then in most of them anyway, and
// evaluating them all costs less than climbing.
func (se *setEval) reachedBy(typ, rel string, pending int) (map[string]bool, bool, error) {
	def := se.ev.schema.Definitions[typ]
	spec, ok := closureSpecFor(se.ev.schema, def, rel)
	if !ok {
		// A relation of plain subjects is its own seed.
		r := def.Relations[rel]
		if !r.Plain() {
			return nil, false, nil
		}
		spec = closureSpec{seeds: []*schema.Relation{r}}
	}
	held := map[string]bool{}
	var frontier []string
	add := func(x graph.Relationship) {
		if id := x.Resource.ID; !held[id] {
			held[id] = true
			frontier = append(frontier, id)
		}
	}
	names := se.onlySortedNames()
	ellipsis := ""
	for _, r := range spec.seeds {
		rows, err := se.sweep(typ, r.Name)
		if err != nil {
			return nil, false, err
		}
		for id := range rows {
			add(graph.Relationship{Resource: graph.ObjectRef{ID: id}})
		}
		if allowsWildcard(r, se.subjectType) {
			if err := se.ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: se.subjectType, IDs: []string{graph.Wildcard}, Relation: &ellipsis},
				ResourceType: typ, Relation: r.Name}, add); err != nil {
				return nil, false, err
			}
		}
	}
	for _, v := range spec.via {
		ok, err := se.ev.viaReverse(typ, v, se.subjectType, names, reachedMax, func(x graph.Relationship, _ int64) { add(x) })
		if err != nil || !ok {
			return nil, false, err
		}
	}
	if 2*len(held) > pending {
		return nil, false, nil
	}
	if len(spec.steps) == 0 || len(frontier) == 0 {
		return held, len(held) <= reachedMax, nil
	}
	if reach := se.ev.eng.cfg.Reach; reach != nil && len(spec.steps) == 1 && spec.steps[0].subjectRel == "" {
		// The objects above the first ones, in memory.
		if l, ok := reach.Referrers(se.ev.rev, typ, spec.steps[0].rel, frontier, se.ev.nowNano, reachedMax+1); ok {
			for _, id := range l.IDs {
				held[id] = true
			}
			return held, len(held) <= reachedMax, nil
		}
	}
	ok, err := se.ev.climbSteps(typ, spec.steps, frontier, func() bool { return len(held) > reachedMax }, func(_ int32, x graph.Relationship) bool {
		if held[x.Resource.ID] {
			return false
		}
		held[x.Resource.ID] = true
		return true
	})
	if err != nil || !ok {
		return nil, false, err
	}
	return held, len(held) <= reachedMax, nil
}
