package core

import (
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// ValidateQuery checks the names a query uses against sch — the resource
// type, the permission (or relation) on it, and the subject's type and
// relation when sub is not nil — before any answer is streamed. Errors
// are FieldErrors naming resourceType (where the request holds the
// resource's type: {"resource", "type"} or, say, {"resource_type"}),
// "permission", or the subject's "type" or "relation".
func ValidateQuery(sch *schema.Schema, resType, perm string, sub *graph.SubjectRef, resourceType Path) error {
	def := sch.Definition(resType)
	if def == nil {
		return Invalid(resourceType, UnknownDefinition(resType))
	}
	if !def.Has(perm) {
		return Invalid(Field("permission"), UnknownRelation(resType, perm, "permission or relation"))
	}
	if sub == nil {
		return nil
	}
	sdef := sch.Definition(sub.Object.Type)
	if sdef == nil {
		return Invalid(Path{"subject", "type"}, UnknownDefinition(sub.Object.Type))
	}
	if sub.Relation != "" && !sdef.Has(sub.Relation) {
		return Invalid(Path{"subject", "relation"}, UnknownRelation(sdef.Name, sub.Relation, "relation or permission"))
	}
	return nil
}
