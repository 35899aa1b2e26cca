package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// SchemaReason says what a request named that the schema does not define
// or allow, for APIs that report a machine-readable reason beside the
// message (SpiceDB's ErrorInfo).
type SchemaReason int

const (
	// ReasonOther is any other refusal by the schema.
	ReasonOther SchemaReason = iota
	// ReasonUnknownDefinition: a type the schema does not define.
	ReasonUnknownDefinition
	// ReasonUnknownRelation: a relation or permission the definition lacks.
	ReasonUnknownRelation
	// ReasonPermissionNotWritable: a relationship written to a permission.
	ReasonPermissionNotWritable
	// ReasonSubjectNotAllowed: a subject the relation does not allow.
	ReasonSubjectNotAllowed
	// ReasonUnknownCaveat: a caveat the schema does not define.
	ReasonUnknownCaveat
)

// SchemaError is a refusal by the schema of something a request names:
// the Reason, the definition and the name refused. Its message is Err's.
type SchemaError struct {
	Reason     SchemaReason
	Definition string
	Name       string
	Err        error
}

func (e *SchemaError) Error() string { return e.Err.Error() }
func (e *SchemaError) Unwrap() error { return e.Err }

// UnknownDefinition is the refusal of type name, which the schema does
// not define.
func UnknownDefinition(name string) *SchemaError {
	return &SchemaError{Reason: ReasonUnknownDefinition, Definition: name,
		Err: fmt.Errorf("type %q is not defined in the schema", name)}
}

// UnknownRelation is the refusal of name on definition def, which has no
// such relation (or permission, when what says "relation or permission").
func UnknownRelation(def, name, what string) *SchemaError {
	return &SchemaError{Reason: ReasonUnknownRelation, Definition: def, Name: name,
		Err: fmt.Errorf("definition %q has no %s %q", def, what, name)}
}

// relationshipReason classifies sch's refusal of r, reported for the
// part field of r (schema.RelationshipError.Field).
func relationshipReason(sch *schema.Schema, r graph.Relationship, field string) (SchemaReason, string, string) {
	switch field {
	case "resource.type":
		return ReasonUnknownDefinition, r.Resource.Type, ""
	case "subject.type":
		return ReasonUnknownDefinition, r.Subject.Object.Type, ""
	case "relation":
		if def := sch.Definition(r.Resource.Type); def != nil && def.Permissions[r.Relation] != nil {
			return ReasonPermissionNotWritable, r.Resource.Type, r.Relation
		}
		return ReasonUnknownRelation, r.Resource.Type, r.Relation
	case "subject.relation":
		return ReasonUnknownRelation, r.Subject.Object.Type, r.Subject.Relation
	case "subject":
		return ReasonSubjectNotAllowed, r.Resource.Type, r.Relation
	case "caveat.name":
		if r.Caveat != nil && sch.Caveats[r.Caveat.Name] == nil {
			return ReasonUnknownCaveat, "", r.Caveat.Name
		}
	}
	return ReasonOther, r.Resource.Type, r.Relation
}

// schemaFieldError is ValidateRelationship's error for a refusal re of r.
func schemaFieldError(sch *schema.Schema, r graph.Relationship, re *schema.RelationshipError, field Path) error {
	reason, def, name := relationshipReason(sch, r, re.Field)
	return Invalid(field.Child(strings.Split(re.Field, ".")...),
		&SchemaError{Reason: reason, Definition: def, Name: name, Err: errors.New(re.Message)})
}
