package check

import (
	"slices"

	"github.com/pembadb/pemba/graph"
)

// holdingsOf says how the access a path proves on resource is held: every
// chain of the path counts (an intersection's other branches too).
//
//   - Direct: a relationship on the resource itself names the subject.
//   - Group: a relationship names a subject set other than the subject.
//   - Parent: a step walks an arrow.
//   - Wildcard: a relationship names a wildcard.
//   - Caveated: a relationship carries a caveat.
//
// The result is sorted and unique.
func holdingsOf(p *Path, resource graph.ObjectRef) []Holding {
	if p == nil {
		return nil
	}
	var set [HoldingCaveated + 1]bool
	var walk func(p *Path)
	walk = func(p *Path) {
		for _, s := range p.Steps {
			if s.Via != "" {
				set[HoldingParent] = true
			}
			r := s.Relationship
			if r == nil {
				continue
			}
			if r.Caveat != nil {
				set[HoldingCaveated] = true
			}
			switch {
			case r.Subject.Object.ID == graph.Wildcard:
				set[HoldingWildcard] = true
			case r.Subject == p.Subject:
				if r.Resource == resource {
					set[HoldingDirect] = true
				}
			case r.Subject.Relation != "":
				set[HoldingGroup] = true
			}
		}
		for _, a := range p.Also {
			walk(a)
		}
	}
	walk(p)
	var out []Holding
	for h := HoldingDirect; h <= HoldingCaveated; h++ {
		if set[h] {
			out = append(out, h)
		}
	}
	return slices.Clip(out)
}
