package reach

import (
	"slices"

	"github.com/pembadb/pemba/schema"
)

// Ancestry is how a permission recursive over a parent relation
// (`permission view = viewer + owner + parent->view` with
// `relation parent: folder` on folder) is answered from the parent
// relation's ancestors: the permission holds on an object when Base does
// on the object or on any of its ancestors through Relation.
type Ancestry struct {
	// Relation is the parent relation (see Parental).
	Relation string
	// Base is the union's branches before the arrow, as one expression.
	Base schema.Expr
}

// Parental reports whether relation rel of typ is a parent relation: it
// allows only plain objects of typ itself, without caveats or wildcards
// (expiring ones are allowed), so its relationships form a graph of typ's
// objects whose every edge is an unconditional step up.
func Parental(s *schema.Schema, typ, rel string) bool {
	def := s.Definitions[typ]
	if def == nil {
		return false
	}
	r := def.Relations[rel]
	if r == nil || len(r.Allowed) == 0 {
		return false
	}
	for _, a := range r.Allowed {
		if a.Type != typ || a.Relation != "" || a.Wildcard || a.Caveat != "" {
			return false
		}
	}
	return true
}

// Qualify returns the ancestry of permission perm of typ: its expression
// is a union whose last branch is an arrow back to perm over a parent
// relation (`parent->view`, see Parental), and whose other branches do
// not depend on perm of typ in the schema's reachability graph. Then the
// permission of an object is its other branches on the object, or on its
// ancestors through the parent relation at any depth, and the walk's
// answer is computed from those branches evaluated on all of them at
// once. ok is false otherwise: an intersection or exclusion above the
// arrow, an .all arrow, an arrow that is not last (the walk would then
// evaluate branches after it only where the arrow does not grant), a
// caveated parent relation or one that allows other types, or branches
// that lead back to the permission (their answers depend on the
// evaluation's frames).
func Qualify(s *schema.Schema, typ, perm string) (Ancestry, bool) {
	def := s.Definitions[typ]
	if def == nil {
		return Ancestry{}, false
	}
	p := def.Permissions[perm]
	if p == nil {
		return Ancestry{}, false
	}
	u, ok := p.Expr.(*schema.Union)
	if !ok || len(u.Children) < 2 {
		return Ancestry{}, false
	}
	last := len(u.Children) - 1
	a, ok := u.Children[last].(*schema.Arrow)
	if !ok || a.Func != schema.ArrowAny || a.Target != perm || !Parental(s, typ, a.Tupleset) {
		return Ancestry{}, false
	}
	base := u.Children[:last]
	self := schema.Node{Type: typ, Relation: perm}
	r := s.Reachability()
	for _, c := range base {
		for _, n := range refers(s, typ, c, nil) {
			if n == self || r.Toward(n).Reaches(self) {
				return Ancestry{}, false
			}
		}
	}
	anc := Ancestry{Relation: a.Tupleset, Base: base[0]}
	if len(base) > 1 {
		anc.Base = &schema.Union{Children: slices.Clip(base)}
	}
	return anc, true
}

// refers appends to out the relations and permissions x names, on typ or,
// through its arrows, on the types their tuplesets allow.
func refers(s *schema.Schema, typ string, x schema.Expr, out []schema.Node) []schema.Node {
	switch x := x.(type) {
	case *schema.RelationRef:
		out = append(out, schema.Node{Type: typ, Relation: x.Name})
	case *schema.Arrow:
		out = append(out, schema.Node{Type: typ, Relation: x.Tupleset})
		if r := s.Definitions[typ].Relations[x.Tupleset]; r != nil {
			for _, a := range r.Allowed {
				out = append(out, schema.Node{Type: a.Type, Relation: x.Target})
			}
		}
	case *schema.Union:
		for _, c := range x.Children {
			out = refers(s, typ, c, out)
		}
	case *schema.Intersection:
		for _, c := range x.Children {
			out = refers(s, typ, c, out)
		}
	case *schema.Exclusion:
		out = refers(s, typ, x.Subtracted, refers(s, typ, x.Base, out))
	}
	return out
}

// ParentKeys lists the parent relations of s some permission's ancestry
// uses (see Qualify), in schema order.
func ParentKeys(s *schema.Schema) []Key {
	return relationKeys(s, func(typ string, name string) []string {
		if anc, ok := Qualify(s, typ, name); ok {
			return []string{anc.Relation}
		}
		return nil
	})
}

// StepKeys lists the parent relations (see Parental) through which a
// permission of their type steps to itself (`permission membership =
// member + subteam->membership` with `relation subteam: team`), in schema
// order, where the permission is a union of such steps, relations of
// plain subjects without caveats, and arrows over those: the permissions
// a check answers by walking up from its subject, from each object to the
// objects whose relation names it. The index keeps them inverted (see
// Index.Referrers).
func StepKeys(s *schema.Schema) []Key {
	return relationKeys(s, func(typ string, name string) []string {
		def := s.Definitions[typ]
		p := def.Permissions[name]
		if p == nil || !grantsDirectly(def, p.Expr) {
			return nil
		}
		var out []string
		for _, rel := range selfArrows(p.Expr, name, nil) {
			if Parental(s, typ, rel) {
				out = append(out, rel)
			}
		}
		return out
	})
}

// relationKeys lists, once each and in schema order, the relations of
// their own type that of gives for each relation or permission of s.
func relationKeys(s *schema.Schema, of func(typ, name string) []string) []Key {
	if s == nil {
		return nil
	}
	var out []Key
	for _, typ := range s.DefinitionOrder {
		for _, name := range s.Definitions[typ].Order {
			for _, rel := range of(typ, name) {
				if k := (Key{typ, rel}); !slices.Contains(out, k) {
					out = append(out, k)
				}
			}
		}
	}
	return slices.Clip(out)
}

// grantsDirectly reports whether union x's every branch is a relation of
// def holding plain subjects without caveats, or an arrow over one.
func grantsDirectly(def *schema.Definition, x schema.Expr) bool {
	switch x := x.(type) {
	case *schema.Union:
		for _, c := range x.Children {
			if !grantsDirectly(def, c) {
				return false
			}
		}
		return true
	case *schema.RelationRef:
		return def.Relations[x.Name].Plain()
	case *schema.Arrow:
		return def.Relations[x.Tupleset].Plain()
	}
	return false
}

// selfArrows appends to out the tuplesets of the arrows back to perm
// (`rel->perm`) among the branches of union x.
func selfArrows(x schema.Expr, perm string, out []string) []string {
	switch x := x.(type) {
	case *schema.Union:
		for _, c := range x.Children {
			out = selfArrows(c, perm, out)
		}
	case *schema.Arrow:
		if x.Func == schema.ArrowAny && x.Target == perm {
			out = append(out, x.Tupleset)
		}
	}
	return out
}
