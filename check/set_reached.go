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
	var spec closureSpec
	if r := def.Relations[rel]; r != nil {
		switch {
		case recursive(typ, r):
			spec = closureSpec{seeds: []*schema.Relation{r}, steps: []closureStep{{rel: rel, subjectRel: rel}}}
		case r.Plain():
			spec = closureSpec{seeds: []*schema.Relation{r}}
		default:
			return nil, false, nil
		}
	} else if p := def.Permissions[rel]; p != nil {
		var ok bool
		if spec, ok = recursivePermission(se.ev.schema, def, p); !ok {
			return nil, false, nil
		}
	} else {
		return nil, false, nil
	}
	held := map[string]bool{}
	var frontier []string
	add := func(x graph.Relationship) {
		if id := x.Resource.ID; !held[id] {
			held[id] = true
			frontier = append(frontier, id)
		}
	}
	_, names := se.onlySorted()
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
	chunk := se.ev.eng.cfg.ChunkSize
	for _, v := range spec.via {
		for k, t := range v.targets {
			subjects := names
			if allowsWildcard(t, se.subjectType) {
				subjects = append(subjects[:len(subjects):len(subjects)], graph.Wildcard)
			}
			mid := map[string]bool{}
			var mids []string
			for start := 0; start < len(subjects); start += chunk {
				part := subjects[start:min(start+chunk, len(subjects))]
				if err := se.ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: se.subjectType, IDs: part, Relation: &ellipsis},
					ResourceType: v.types[k], Relation: t.Name}, func(x graph.Relationship) {
					if !mid[x.Resource.ID] {
						mid[x.Resource.ID] = true
						mids = append(mids, x.Resource.ID)
					}
				}); err != nil {
					return nil, false, err
				}
			}
			if len(mids) > reachedMax {
				return nil, false, nil
			}
			for start := 0; start < len(mids); start += chunk {
				part := mids[start:min(start+chunk, len(mids))]
				if err := se.ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: v.types[k], IDs: part, Relation: &ellipsis},
					ResourceType: typ, Relation: v.tupleset}, add); err != nil {
					return nil, false, err
				}
			}
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
	for len(frontier) > 0 {
		if len(held) > reachedMax {
			return nil, false, nil
		}
		cur := frontier
		frontier = nil
		for start := 0; start < len(cur); start += chunk {
			part := cur[start:min(start+chunk, len(cur))]
			for _, st := range spec.steps {
				subjectRel := st.subjectRel
				if err := se.ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: typ, IDs: part, Relation: &subjectRel},
					ResourceType: typ, Relation: st.rel}, add); err != nil {
					return nil, false, err
				}
			}
		}
	}
	return held, len(held) <= reachedMax, nil
}
