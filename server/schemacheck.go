package server

import (
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// validateQuery checks the names a query uses against the schema, so the
// error names the request field: the resource type, the permission (or
// relation) on it, and the subject's type and relation.
// resTypeField names the resource type's field ("" for "resource.type").
func validateQuery(sch *schema.Schema, resType, perm string, sub *graph.SubjectRef, prefix, resTypeField string) error {
	if resTypeField == "" {
		resTypeField = "resource.type"
	}
	def := sch.Definition(resType)
	if def == nil {
		return invalidField(prefix+resTypeField, "type %q is not defined in the schema", resType)
	}
	if !def.Has(perm) {
		return invalidField(prefix+"permission", "definition %q has no permission or relation %q", resType, perm)
	}
	if sub == nil {
		return nil
	}
	sdef := sch.Definition(sub.Object.Type)
	if sdef == nil {
		return invalidField(prefix+"subject.object.type", "type %q is not defined in the schema", sub.Object.Type)
	}
	if sub.Relation != "" && !sdef.Has(sub.Relation) {
		return invalidField(prefix+"subject.relation", "definition %q has no relation or permission %q", sdef.Name, sub.Relation)
	}
	return nil
}
