package check

import (
	"maps"

	"github.com/pembadb/pemba/schema"
)

// skeletonFrom extends monotoneFrom to the permissions the access walks
// answer with a check per row: those whose own expression subtracts
// (`base - subtracted`, at any depth of its unions and bases) but is
// otherwise built from relations, permissions and any-arrows that are
// monotone. Its skeleton is the expression with every exclusion replaced
// by its base.
//
// Every subject that holds such a permission holds its skeleton, so a
// walk over the skeleton meets it, and the chain the walk found is a
// proof of the base: it runs through monotone objects only, each of
// which the subject holds along it. Whether the subtracted side takes
// the access away is for a check to say.
//
// It returns the (type, relation) pairs the skeleton reaches, whether
// the walk can answer the permission (eligible), and whether the
// permission is monotone itself (no check needed).
func skeletonFrom(s *schema.Schema, typ, rel string) (reach map[[2]string]bool, eligible, monotone bool) {
	reach, monotone = monotoneFrom(s, typ, rel)
	if monotone {
		return reach, true, true
	}
	def := s.Definitions[typ]
	p := def.Permissions[rel]
	if p == nil {
		return reach, false, false
	}
	reach = map[[2]string]bool{{typ, rel}: true}
	add := func(t, r string) bool {
		m, ok := monotoneFrom(s, t, r)
		maps.Copy(reach, m)
		return ok
	}
	var leaves func(x schema.Expr) bool
	leaves = func(x schema.Expr) bool {
		switch x := x.(type) {
		case *schema.Union:
			for _, c := range x.Children {
				if !leaves(c) {
					return false
				}
			}
			return true
		case *schema.Exclusion:
			return leaves(x.Base)
		case *schema.RelationRef:
			return x.Name != rel && add(typ, x.Name)
		case *schema.Arrow:
			r := def.Relations[x.Tupleset]
			if x.Func != schema.ArrowAny || r == nil {
				return false
			}
			for _, a := range r.Allowed {
				if a.Type == typ && x.Target == rel || !add(a.Type, x.Target) {
					return false
				}
			}
			return true
		case *schema.Nil:
			return true
		}
		return false
	}
	return reach, leaves(p.Expr), false
}
