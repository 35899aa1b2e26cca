package server

import (
	"fmt"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/pembadb/pemba/schema"
)

// Conversions from compiled schemas and their diffs (package schema) to
// SchemaService's reflection messages, and ReflectSchema's filters. What
// the messages cannot carry is left out: a relation's `with expiration`
// (ReflectionTypeReference has no field for it) and `use` flags.

// maxReflectionFilters caps ReflectSchema's optional_filters, so a request
// cannot make the filter loops grow past the schema's size times a
// constant.
const maxReflectionFilters = 100

// reflectFilter is ReflectSchema's optional_filters, checked. Filters are
// alternatives: an element is kept when one of them matches its name
// prefixes. With no filters everything is kept.
type reflectFilter struct{ filters []*v1.ReflectionSchemaFilter }

// reflectFilterFromAuthzed checks fs: a relation or permission prefix
// needs a definition prefix, and a filter matches definitions (and their
// members) or caveats, and relations or permissions, not both.
func reflectFilterFromAuthzed(fs []*v1.ReflectionSchemaFilter) (reflectFilter, error) {
	if len(fs) > maxReflectionFilters {
		return reflectFilter{}, invalidField("optional_filters", "%d filters exceed the limit of %d", len(fs), maxReflectionFilters)
	}
	for i, f := range fs {
		field := fmt.Sprintf("optional_filters[%d]", i)
		def, cav := f.GetOptionalDefinitionNameFilter(), f.GetOptionalCaveatNameFilter()
		rel, perm := f.GetOptionalRelationNameFilter(), f.GetOptionalPermissionNameFilter()
		switch {
		case def != "" && cav != "":
			return reflectFilter{}, invalidField(field, "filter definitions or caveats, not both")
		case (rel != "" || perm != "") && def == "":
			return reflectFilter{}, invalidField(field, "a relation or permission name filter needs a definition name filter")
		case rel != "" && perm != "":
			return reflectFilter{}, invalidField(field, "filter relations or permissions, not both")
		}
	}
	return reflectFilter{filters: fs}, nil
}

// definition reports whether the definition called name is kept.
func (f reflectFilter) definition(name string) bool {
	return f.keeps(func(sf *v1.ReflectionSchemaFilter) (string, bool) {
		p := sf.GetOptionalDefinitionNameFilter()
		return p, strings.HasPrefix(name, p)
	})
}

// caveat reports whether the caveat called name is kept.
func (f reflectFilter) caveat(name string) bool {
	return f.keeps(func(sf *v1.ReflectionSchemaFilter) (string, bool) {
		p := sf.GetOptionalCaveatNameFilter()
		return p, strings.HasPrefix(name, p)
	})
}

// relation reports whether def's relation called name is kept: always,
// unless some filter names relations.
func (f reflectFilter) relation(def, name string) bool {
	return len(f.filters) == 0 || f.member(def, name, (*v1.ReflectionSchemaFilter).GetOptionalRelationNameFilter)
}

// permission is relation for permissions.
func (f reflectFilter) permission(def, name string) bool {
	return len(f.filters) == 0 || f.member(def, name, (*v1.ReflectionSchemaFilter).GetOptionalPermissionNameFilter)
}

// keeps reports whether there are no filters or one of them has a prefix
// (per prefix) that matches.
func (f reflectFilter) keeps(prefix func(*v1.ReflectionSchemaFilter) (string, bool)) bool {
	if len(f.filters) == 0 {
		return true
	}
	for _, sf := range f.filters {
		if p, match := prefix(sf); p != "" && match {
			return true
		}
	}
	return false
}

func (f reflectFilter) member(def, name string, prefix func(*v1.ReflectionSchemaFilter) string) bool {
	named := false
	for _, sf := range f.filters {
		p := prefix(sf)
		if p == "" {
			continue
		}
		named = true
		if strings.HasPrefix(name, p) && strings.HasPrefix(def, sf.GetOptionalDefinitionNameFilter()) {
			return true
		}
	}
	return !named
}

// reflectSchema is sch (nil: no schema) as ReflectSchema answers, in
// source order, with what f keeps.
func reflectSchema(sch *schema.Schema, f reflectFilter) *v1.ReflectSchemaResponse {
	resp := &v1.ReflectSchemaResponse{}
	if sch == nil {
		return resp
	}
	for _, name := range sch.DefinitionOrder {
		if f.definition(name) {
			resp.Definitions = append(resp.Definitions, reflectDefinition(sch.Definition(name), f))
		}
	}
	for _, name := range sch.CaveatOrder {
		if f.caveat(name) {
			resp.Caveats = append(resp.Caveats, reflectCaveat(sch.Caveat(name)))
		}
	}
	return resp
}

// reflectDefinition is def with the members f keeps, in source order.
func reflectDefinition(def *schema.Definition, f reflectFilter) *v1.ReflectionDefinition {
	out := &v1.ReflectionDefinition{Name: def.Name, Comment: def.Doc}
	for _, m := range def.Order {
		rel, perm := def.Lookup(m)
		switch {
		case rel != nil && f.relation(def.Name, m):
			out.Relations = append(out.Relations, reflectRelation(def.Name, rel))
		case perm != nil && f.permission(def.Name, m):
			out.Permissions = append(out.Permissions, reflectPermission(def.Name, perm))
		}
	}
	return out
}

func reflectRelation(def string, rel *schema.Relation) *v1.ReflectionRelation {
	out := &v1.ReflectionRelation{Name: rel.Name, Comment: rel.Doc, ParentDefinitionName: def}
	for _, a := range rel.Allowed {
		out.SubjectTypes = append(out.SubjectTypes, reflectTypeRef(a))
	}
	return out
}

// reflectTypeRef is one allowed subject type: a plain type is terminal, a
// subject set names its relation, `type:*` is a public wildcard.
func reflectTypeRef(a schema.AllowedSubject) *v1.ReflectionTypeReference {
	out := &v1.ReflectionTypeReference{SubjectDefinitionName: a.Type, OptionalCaveatName: a.Caveat}
	switch {
	case a.Wildcard:
		out.Typeref = &v1.ReflectionTypeReference_IsPublicWildcard{IsPublicWildcard: true}
	case a.Relation != "":
		out.Typeref = &v1.ReflectionTypeReference_OptionalRelationName{OptionalRelationName: a.Relation}
	default:
		out.Typeref = &v1.ReflectionTypeReference_IsTerminalSubject{IsTerminalSubject: true}
	}
	return out
}

func reflectPermission(def string, p *schema.Permission) *v1.ReflectionPermission {
	return &v1.ReflectionPermission{Name: p.Name, Comment: p.Doc, ParentDefinitionName: def}
}

func reflectCaveat(c *schema.Caveat) *v1.ReflectionCaveat {
	out := &v1.ReflectionCaveat{Name: c.Name, Comment: c.Doc, Expression: c.Expression}
	for _, p := range c.Params {
		out.Parameters = append(out.Parameters, reflectParam(c.Name, p))
	}
	return out
}

func reflectParam(caveat string, p schema.CaveatParam) *v1.ReflectionCaveatParameter {
	return &v1.ReflectionCaveatParameter{Name: p.Name, Type: p.Type, ParentCaveatName: caveat}
}

// reflectRefs is nodes as relation references, each marked a permission
// or not by its definition in sch.
func reflectRefs(sch *schema.Schema, nodes []schema.Node, keep func(schema.Node) bool) []*v1.ReflectionRelationReference {
	out := make([]*v1.ReflectionRelationReference, 0, len(nodes))
	for _, n := range nodes {
		if keep(n) {
			out = append(out, &v1.ReflectionRelationReference{DefinitionName: n.Type, RelationName: n.Relation,
				IsPermission: sch.Definition(n.Type).IsPermission(n.Relation)})
		}
	}
	return out
}

// reflectDiff is schema.Compare(prev, next) as DiffSchema's diffs: an
// addition carries the element from next, a removal the one from prev, a
// change the element as next has it. A relation that became a permission
// (or the reverse) is removed and added. Definitions added or removed come
// whole, without a diff for each member.
func reflectDiff(prev, next *schema.Schema) []*v1.ReflectionSchemaDiff {
	if prev == nil {
		prev = &schema.Schema{}
	}
	d := schema.Compare(prev, next)
	var out []*v1.ReflectionSchemaDiff
	add := func(diff *v1.ReflectionSchemaDiff) { out = append(out, diff) }
	everything := reflectFilter{}
	for _, n := range d.AddedDefinitions {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_DefinitionAdded{DefinitionAdded: reflectDefinition(next.Definition(n), everything)}})
	}
	for _, n := range d.RemovedDefinitions {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_DefinitionRemoved{DefinitionRemoved: reflectDefinition(prev.Definition(n), everything)}})
	}
	for _, n := range d.AddedCaveats {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatAdded{CaveatAdded: reflectCaveat(next.Caveat(n))}})
	}
	for _, n := range d.RemovedCaveats {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatRemoved{CaveatRemoved: reflectCaveat(prev.Caveat(n))}})
	}
	for _, c := range d.ChangedCaveats {
		for _, p := range c.AddedParams {
			add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatParameterAdded{CaveatParameterAdded: reflectParam(c.Name, p)}})
		}
		for _, p := range c.RemovedParams {
			add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatParameterRemoved{CaveatParameterRemoved: reflectParam(c.Name, p)}})
		}
		for _, p := range c.RetypedParams {
			add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatParameterTypeChanged{CaveatParameterTypeChanged: &v1.ReflectionCaveatParameterTypeChange{
				Parameter: reflectParam(c.Name, schema.CaveatParam{Name: p.Name, Type: p.NewType}), PreviousType: p.OldType}}})
		}
		if c.OldExpr != c.NewExpr {
			add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatExprChanged{CaveatExprChanged: reflectCaveat(next.Caveat(c.Name))}})
		}
	}
	for _, dd := range d.Definitions {
		out = append(out, reflectDefinitionDiff(prev.Definition(dd.Name), next.Definition(dd.Name), dd)...)
	}
	for _, dc := range d.DocChanges {
		out = append(out, reflectDocChange(next, dc))
	}
	return out
}

// reflectDefinitionDiff is the diffs inside a definition both schemas have.
func reflectDefinitionDiff(od, nd *schema.Definition, dd schema.DefinitionDiff) []*v1.ReflectionSchemaDiff {
	var out []*v1.ReflectionSchemaDiff
	add := func(diff *v1.ReflectionSchemaDiff) { out = append(out, diff) }
	relAdded := func(name string) {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationAdded{RelationAdded: reflectRelation(nd.Name, nd.Relations[name])}})
	}
	relRemoved := func(name string) {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationRemoved{RelationRemoved: reflectRelation(od.Name, od.Relations[name])}})
	}
	permAdded := func(name string) {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionAdded{PermissionAdded: reflectPermission(nd.Name, nd.Permissions[name])}})
	}
	permRemoved := func(name string) {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionRemoved{PermissionRemoved: reflectPermission(od.Name, od.Permissions[name])}})
	}
	for _, r := range dd.AddedRelations {
		relAdded(r)
	}
	for _, r := range dd.RemovedRelations {
		relRemoved(r)
	}
	for _, p := range dd.AddedPermissions {
		permAdded(p)
	}
	for _, p := range dd.RemovedPermissions {
		permRemoved(p)
	}
	for _, r := range dd.RelationsToPermissions {
		relRemoved(r)
		permAdded(r)
	}
	for _, p := range dd.PermissionsToRelations {
		permRemoved(p)
		relAdded(p)
	}
	for _, c := range dd.AllowedSubjects {
		rel := reflectRelation(nd.Name, nd.Relations[c.Relation])
		for _, a := range c.Added {
			add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationSubjectTypeAdded{RelationSubjectTypeAdded: &v1.ReflectionRelationSubjectTypeChange{
				Relation: rel, ChangedSubjectType: reflectTypeRef(a)}}})
		}
		for _, a := range c.Removed {
			add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationSubjectTypeRemoved{RelationSubjectTypeRemoved: &v1.ReflectionRelationSubjectTypeChange{
				Relation: rel, ChangedSubjectType: reflectTypeRef(a)}}})
		}
	}
	for _, p := range dd.ChangedPermissions {
		add(&v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionExprChanged{PermissionExprChanged: reflectPermission(nd.Name, nd.Permissions[p.Name])}})
	}
	return out
}

// reflectDocChange is a doc comment change, with the element as next has
// it.
func reflectDocChange(next *schema.Schema, dc schema.DocChange) *v1.ReflectionSchemaDiff {
	if dc.Caveat != "" {
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_CaveatDocCommentChanged{
			CaveatDocCommentChanged: reflectCaveat(next.Caveat(dc.Caveat))}}
	}
	def := next.Definition(dc.Definition)
	if dc.Member == "" {
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_DefinitionDocCommentChanged{
			DefinitionDocCommentChanged: reflectDefinition(def, reflectFilter{})}}
	}
	rel, perm := def.Lookup(dc.Member)
	if rel != nil {
		return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_RelationDocCommentChanged{
			RelationDocCommentChanged: reflectRelation(def.Name, rel)}}
	}
	return &v1.ReflectionSchemaDiff{Diff: &v1.ReflectionSchemaDiff_PermissionDocCommentChanged{
		PermissionDocCommentChanged: reflectPermission(def.Name, perm)}}
}
