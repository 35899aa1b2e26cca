package check

import "github.com/pembadb/pemba/schema"

// shrinksOverTime reports whether typ#rel can only lose subjects as time
// passes with nothing written: no relationship that can expire (a
// relation allowing `with expiration`) is reachable where losing it could
// grant more, that is on the subtracted side of an exclusion or as the
// tupleset of an all-arrow (its expiry removes a target every one of
// which must grant). Then whether a subject holds it at instant t is
// monotone in t, so its end can be bisected.
func shrinksOverTime(s *schema.Schema, typ, rel string) bool {
	type key struct {
		typ, rel string
		neg      bool
	}
	seen := map[key]bool{}
	expiring := func(r *schema.Relation) bool {
		for _, a := range r.Allowed {
			if a.Expiration {
				return true
			}
		}
		return false
	}
	var walk func(typ, rel string, neg bool) bool
	var expr func(def *schema.Definition, x schema.Expr, neg bool) bool
	walk = func(typ, rel string, neg bool) bool {
		k := key{typ, rel, neg}
		if seen[k] {
			return true
		}
		seen[k] = true
		def := s.Definitions[typ]
		if def == nil {
			return true
		}
		if p := def.Permissions[rel]; p != nil {
			return expr(def, p.Expr, neg)
		}
		r := def.Relations[rel]
		if r == nil {
			return true
		}
		if neg && expiring(r) {
			return false
		}
		for _, a := range r.Allowed {
			if a.Relation != "" && !walk(a.Type, a.Relation, neg) {
				return false
			}
		}
		return true
	}
	expr = func(def *schema.Definition, x schema.Expr, neg bool) bool {
		switch x := x.(type) {
		case *schema.Union:
			for _, c := range x.Children {
				if !expr(def, c, neg) {
					return false
				}
			}
			return true
		case *schema.Intersection:
			for _, c := range x.Children {
				if !expr(def, c, neg) {
					return false
				}
			}
			return true
		case *schema.Exclusion:
			return expr(def, x.Base, neg) && expr(def, x.Subtracted, !neg)
		case *schema.RelationRef:
			return walk(def.Name, x.Name, neg)
		case *schema.Nil:
			return true
		case *schema.Arrow:
			r := def.Relations[x.Tupleset]
			if r == nil {
				return true
			}
			tupleNeg := neg
			if x.Func == schema.ArrowAll {
				tupleNeg = !neg
			}
			if tupleNeg && expiring(r) {
				return false
			}
			for _, a := range r.Allowed {
				if !walk(a.Type, x.Target, neg) {
					return false
				}
			}
			return true
		}
		return false
	}
	return walk(typ, rel, false)
}
