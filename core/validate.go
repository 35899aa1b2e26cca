package core

import (
	"errors"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// ValidateRelationship checks that sch accepts r (schema.ValidateRelationship);
// a refusal is a FieldError naming the part of r below field, where r sits
// in the request (e.g. {"updates[2]", "relationship", "subject", "type"}).
func ValidateRelationship(sch *schema.Schema, r graph.Relationship, field Path) error {
	err := sch.ValidateRelationship(r)
	var re *schema.RelationshipError
	if errors.As(err, &re) {
		return schemaFieldError(sch, r, re, field)
	}
	return err
}
