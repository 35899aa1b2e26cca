package schema

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pembadb/pemba/graph"
)

// RelationshipError says why a schema does not accept a relationship.
// Field names the offending part relative to the relationship
// ("resource.type", "relation", "subject", "subject.relation",
// "caveat.name", "caveat.context", "caveat", "expiration"), so an API can
// prefix it with the request field that held the relationship.
type RelationshipError struct {
	Field   string
	Message string
}

func (e *RelationshipError) Error() string { return e.Message }

func relationshipError(field, format string, args ...any) error {
	return &RelationshipError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ValidateRelationship checks that r may be stored under s: its resource
// type and relation exist (and the relation is not a permission), the
// subject type, subject relation and wildcard are allowed, the caveat is one
// the relation allows for that subject (or one it requires is present), its
// context names only declared parameters, and it has an expiration
// exactly when the relation allows (`with expiration`) or requires one: a
// relation whose only allowance for the subject is `user with expiration`
// refuses a relationship without one, as `user | user with expiration`
// does not.
func (s *Schema) ValidateRelationship(r graph.Relationship) error {
	def := s.Definition(r.Resource.Type)
	if def == nil {
		return relationshipError("resource.type", "type %q is not defined in the schema", r.Resource.Type)
	}
	rel, perm := def.Lookup(r.Relation)
	if perm != nil {
		return relationshipError("relation", "%q is a permission of %q; only relations can be written", r.Relation, def.Name)
	}
	if rel == nil {
		return relationshipError("relation", "definition %q has no relation %q", def.Name, r.Relation)
	}
	sub := r.Subject
	sdef := s.Definition(sub.Object.Type)
	if sdef == nil {
		return relationshipError("subject.type", "type %q is not defined in the schema", sub.Object.Type)
	}
	if sub.Relation != "" && !sdef.Has(sub.Relation) {
		return relationshipError("subject.relation", "definition %q has no relation or permission %q", sdef.Name, sub.Relation)
	}
	allowed := rel.AllowedFor(sub.Object.Type, sub.Relation, sub.IsWildcard())
	if len(allowed) == 0 {
		return relationshipError("subject", "subject %s is not allowed on %s#%s (allowed: %s)",
			subjectTypeString(sub), def.Name, rel.Name, rel.allowedList())
	}
	caveat := ""
	if r.Caveat != nil {
		caveat = r.Caveat.Name
		c := s.Caveat(caveat)
		if c == nil {
			return relationshipError("caveat.name", "caveat %q is not defined in the schema", caveat)
		}
		if err := c.CheckContext(r.Caveat.Context); err != nil {
			return relationshipError("caveat.context", "%v", err)
		}
	}
	matching := slices.DeleteFunc(slices.Clone(allowed), func(a AllowedSubject) bool { return a.Caveat != caveat })
	if len(matching) == 0 {
		if caveat == "" {
			return relationshipError("caveat", "%s#%s requires a caveat for subject %s (allowed: %s)",
				def.Name, rel.Name, subjectTypeString(sub), rel.allowedList())
		}
		return relationshipError("caveat.name", "caveat %q is not allowed on %s#%s for subject %s (allowed: %s)",
			caveat, def.Name, rel.Name, subjectTypeString(sub), rel.allowedList())
	}
	expires := r.Expiration != nil
	if !slices.ContainsFunc(matching, func(a AllowedSubject) bool { return a.Expiration == expires }) {
		if expires {
			return relationshipError("expiration", "%s#%s does not allow an expiration for subject %s (allowed: %s)",
				def.Name, rel.Name, subjectTypeString(sub), rel.allowedList())
		}
		return relationshipError("expiration", "%s#%s requires an expiration for subject %s: did you mean to write it with one? (allowed: %s)",
			def.Name, rel.Name, subjectTypeString(sub), rel.allowedList())
	}
	return nil
}

// subjectTypeString names the kind of subject: `user`, `user:*` or `group#member`.
func subjectTypeString(s graph.SubjectRef) string {
	switch {
	case s.IsWildcard():
		return s.Object.Type + ":*"
	case s.Relation != "":
		return s.Object.Type + "#" + s.Relation
	}
	return s.Object.Type
}

// maxListedAllowed bounds the allowed subject types an error lists, so
// that refusing one relationship does not repeat a huge relation.
const maxListedAllowed = 20

// allowedList renders the relation's allowed subject types, comma-separated,
// at most maxListedAllowed of them.
func (r *Relation) allowedList() string {
	shown := r.Allowed[:min(len(r.Allowed), maxListedAllowed)]
	parts := make([]string, len(shown))
	for i, a := range shown {
		parts[i] = a.String()
	}
	if more := len(r.Allowed) - len(shown); more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, ", ")
}
