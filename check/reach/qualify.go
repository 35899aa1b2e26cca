package reach

import (
	"slices"

	"github.com/pembadb/pemba/schema"
)

// Qualifies reports whether relation rel of typ is indexed: a relation
// whose only subject set is itself (`relation member: user | group#member`)
// and that allows no caveat, so every chain of its relationships from a
// plain subject (or a wildcard) up to an object is an unconditional grant.
// Wildcards and expiring relationships are allowed. Permissions, relations
// nesting other relations (`viewer: group#member`) and caveated relations
// are left to the walk: their answers depend on more than one relation or
// on the request's caveat context.
func Qualifies(s *schema.Schema, typ, rel string) bool {
	def := s.Definitions[typ]
	if def == nil {
		return false
	}
	r := def.Relations[rel]
	if r == nil {
		return false
	}
	self := false
	for _, a := range r.Allowed {
		if a.Caveat != "" {
			return false
		}
		if a.Relation != "" {
			if a.Type != typ || a.Relation != rel {
				return false
			}
			self = true
		}
	}
	return self
}

// Key names an indexed relation.
type Key struct{ Type, Relation string }

// Keys lists the relations of s that qualify, in schema order.
func Keys(s *schema.Schema) []Key {
	var out []Key
	if s == nil {
		return nil
	}
	for _, typ := range s.DefinitionOrder {
		def := s.Definitions[typ]
		for _, name := range def.Order {
			if Qualifies(s, typ, name) {
				out = append(out, Key{typ, name})
			}
		}
	}
	return slices.Clip(out)
}
