package schema

// Definition returns the named definition, or nil.
func (s *Schema) Definition(name string) *Definition { return s.Definitions[name] }

// Caveat returns the named caveat, or nil.
func (s *Schema) Caveat(name string) *Caveat { return s.Caveats[name] }

// HasFlag reports whether the schema enables flag with `use`.
func (s *Schema) HasFlag(flag string) bool {
	for _, f := range s.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Warnings lists problems SpiceDB accepts but that are likely mistakes,
// such as an arrow to a relation none of the tupleset's types define.
func (s *Schema) Warnings() ErrorList { return s.warnings }

// Lookup returns the relation or the permission called name; at most one
// is non-nil, and both are nil when the definition has neither.
func (d *Definition) Lookup(name string) (*Relation, *Permission) {
	if r, ok := d.Relations[name]; ok {
		return r, nil
	}
	return nil, d.Permissions[name]
}

// Has reports whether the definition has a relation or permission name.
func (d *Definition) Has(name string) bool {
	r, p := d.Lookup(name)
	return r != nil || p != nil
}

// IsPermission reports whether name is a permission of the definition.
func (d *Definition) IsPermission(name string) bool {
	_, ok := d.Permissions[name]
	return ok
}

// IsRelation reports whether name is a relation of the definition.
func (d *Definition) IsRelation(name string) bool {
	_, ok := d.Relations[name]
	return ok
}

// Plain reports whether r holds only plain subjects (objects or
// wildcards, no subject sets) without caveats, so each of its
// relationships grants its subject unconditionally; false for a nil r.
func (r *Relation) Plain() bool {
	if r == nil {
		return false
	}
	for _, a := range r.Allowed {
		if a.Caveat != "" || a.Relation != "" {
			return false
		}
	}
	return true
}

// AllowedFor returns the allowed subject types of the relation that match
// a subject of type subjectType with relation subjectRelation ("" for a
// plain object); wildcard selects `type:*` entries.
func (r *Relation) AllowedFor(subjectType, subjectRelation string, wildcard bool) []AllowedSubject {
	var out []AllowedSubject
	for _, a := range r.Allowed {
		if a.Type == subjectType && a.Wildcard == wildcard && (wildcard || a.Relation == subjectRelation) {
			out = append(out, a)
		}
	}
	return out
}
