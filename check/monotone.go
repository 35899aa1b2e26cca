package check

import "github.com/pembadb/pemba/schema"

// monotoneFrom returns the (type, relation) pairs a walk from typ#rel can
// reach, and whether all of them are monotone: built only from unions,
// relations, computed relations and `->`/`.any` arrows, with no
// intersection, exclusion or `.all`. Through such a permission every
// uncaveated chain of relationships from the object to a subject is a
// grant, and nothing else is, so a forward walk over uncaveated
// relationships finds exactly the subjects that have it.
//
// It costs one pass over the part of the schema reachable from typ#rel,
// which is small next to a single storage query, so it is computed per
// request rather than cached.
func monotoneFrom(s *schema.Schema, typ, rel string) (map[[2]string]bool, bool) {
	reach := make(map[[2]string]bool)
	var walk func(typ, rel string) bool
	var expr func(def *schema.Definition, x schema.Expr) bool
	walk = func(typ, rel string) bool {
		k := [2]string{typ, rel}
		if reach[k] {
			return true
		}
		def := s.Definitions[typ]
		if def == nil {
			return true // never reached: the walk skips undefined types
		}
		reach[k] = true
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
			for _, c := range x.Children {
				if !expr(def, c) {
					return false
				}
			}
			return true
		case *schema.RelationRef:
			return walk(def.Name, x.Name)
		case *schema.Nil:
			return true
		case *schema.Arrow:
			r := def.Relations[x.Tupleset]
			if x.Func != schema.ArrowAny || r == nil {
				return false
			}
			for _, a := range r.Allowed {
				if !walk(a.Type, x.Target) {
					return false
				}
			}
			return true
		}
		return false // intersection, exclusion, or an expression this walk does not know
	}
	ok := walk(typ, rel)
	return reach, ok
}
