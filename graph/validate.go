package graph

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// Validate checks the type and ID; the wildcard is not an object ID.
func (o ObjectRef) Validate() error { return o.validate("object") }

func (o ObjectRef) validate(role string) error {
	if pr := typeNameProblem(o.Type); !pr.ok() {
		return validationError(role+" type", o.Type, pr)
	}
	if o.ID == Wildcard {
		return &ValidationError{Part: role + " id", Value: o.ID, Message: "the wildcard * may only be a subject id"}
	}
	if pr := objectIDProblem(o.ID); !pr.ok() {
		return validationError(role+" id", o.ID, pr)
	}
	return nil
}

// Validate checks the subject's type, ID (or wildcard) and relation. The
// ellipsis must be stored as the empty relation, and a wildcard has none.
func (s SubjectRef) Validate() error {
	if s.IsWildcard() {
		if pr := typeNameProblem(s.Object.Type); !pr.ok() {
			return validationError("subject type", s.Object.Type, pr)
		}
	} else if err := s.Object.validate("subject"); err != nil {
		return err
	}
	switch {
	case s.Relation == "":
		return nil
	case s.Relation == Ellipsis:
		return &ValidationError{Part: "subject relation", Value: s.Relation,
			Message: `the ellipsis is written as the empty relation ""`}
	case s.IsWildcard():
		return &ValidationError{Part: "subject relation", Value: s.Relation,
			Message: "a wildcard subject cannot have a relation"}
	}
	if pr := relationProblem(s.Relation); !pr.ok() {
		return validationError("subject relation", s.Relation, pr)
	}
	return nil
}

// Validate checks every part of the relationship by the same rules as
// ParseRelationship, so a valid relationship formats and re-parses to an
// equal one. Context values must be JSON values as encoding/json decodes
// them (string, float64, bool, nil, []any, map[string]any); integers and
// json.Number are accepted too, though they re-parse as float64.
func (r Relationship) Validate() error {
	if err := r.Resource.validate("resource"); err != nil {
		return err
	}
	if pr := relationProblem(r.Relation); !pr.ok() {
		return validationError("relation", r.Relation, pr)
	}
	if err := r.Subject.Validate(); err != nil {
		return err
	}
	if r.Caveat != nil {
		if pr := caveatNameProblem(r.Caveat.Name); !pr.ok() {
			return validationError("caveat name", r.Caveat.Name, pr)
		}
		for k, v := range r.Caveat.Context {
			if !utf8.ValidString(k) {
				return &ValidationError{Part: "caveat context key", Value: k, Message: "must be valid UTF-8"}
			}
			if msg := contextValueProblem(v, 2); msg != "" {
				return &ValidationError{Part: "caveat context value", Value: k, Message: msg}
			}
		}
	}
	if r.Expiration != nil {
		if pr := expirationProblem(*r.Expiration); !pr.ok() {
			return validationError("expiration", r.Expiration.String(), pr)
		}
	}
	return nil
}

func validationError(part, value string, pr problem) *ValidationError {
	return &ValidationError{Part: part, Value: value,
		Message: pr.describe(value, func(i int) string { return fmt.Sprintf("byte %d", i) })}
}

// expirationProblem rejects instants RFC 3339 cannot write: years outside
// 0000-9999 in UTC.
func expirationProblem(t time.Time) problem {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return problem{"must be between years 0000 and 9999 in UTC", -1}
	}
	return noProblem
}

// MaxCaveatContextDepth bounds how deeply objects and arrays nest in a
// caveat context, the context object itself being the first level:
// `{"a":[{"b":1}]}` has three. Decoding, validating and encoding a context
// recurse once per level.
const MaxCaveatContextDepth = 32

// tooDeep is the problem of a context nesting past MaxCaveatContextDepth.
var tooDeep = fmt.Sprintf("nests objects and arrays deeper than the limit of %d levels", MaxCaveatContextDepth)

// ValidateContextDepth checks that value, the value of key in a caveat
// context, keeps the context within MaxCaveatContextDepth levels. The
// error is a *ValidationError naming key. It costs one walk of value, for
// callers that accept context values Validate has not seen (a request's).
func ValidateContextDepth(key string, value any) error {
	if contextTooDeep(value, 2) {
		return &ValidationError{Part: "caveat context value", Value: key, Message: tooDeep}
	}
	return nil
}

// contextTooDeep reports whether v, at nesting level level (its own
// brackets being that level), goes past MaxCaveatContextDepth.
func contextTooDeep(v any, level int) bool {
	switch v := v.(type) {
	case []any:
		if level > MaxCaveatContextDepth {
			return true
		}
		for _, e := range v {
			if contextTooDeep(e, level+1) {
				return true
			}
		}
	case map[string]any:
		if level > MaxCaveatContextDepth {
			return true
		}
		for _, e := range v {
			if contextTooDeep(e, level+1) {
				return true
			}
		}
	}
	return false
}

// contextValueProblem says why v, at nesting level level, cannot be a
// caveat context value, or "".
func contextValueProblem(v any, level int) string {
	switch v := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(v), 64); err != nil {
			return "must be a JSON number"
		}
		return ""
	case string:
		if !utf8.ValidString(v) {
			return "must be valid UTF-8"
		}
		return ""
	case nil, bool,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return ""
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "must be a finite number"
		}
		return ""
	case float32:
		return contextValueProblem(float64(v), level)
	case []any:
		if level > MaxCaveatContextDepth {
			return tooDeep
		}
		for _, e := range v {
			if msg := contextValueProblem(e, level+1); msg != "" {
				return msg
			}
		}
		return ""
	case map[string]any:
		if level > MaxCaveatContextDepth {
			return tooDeep
		}
		for k, e := range v {
			if !utf8.ValidString(k) {
				return "has a key that is not valid UTF-8"
			}
			if msg := contextValueProblem(e, level+1); msg != "" {
				return msg
			}
		}
		return ""
	}
	return fmt.Sprintf("has type %T, which is not a JSON value", v)
}

// equalContext compares caveat contexts; nil and empty are the same.
func equalContext(a, b map[string]any) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return reflect.DeepEqual(a, b)
}

// ValidateTypeName checks a definition (object type) name, so the schema
// compiler and the datastore apply the same rule as the relationship syntax.
func ValidateTypeName(name string) error {
	if pr := typeNameProblem(name); !pr.ok() {
		return validationError("type name", name, pr)
	}
	return nil
}

// ValidateRelationName checks a relation or permission name.
func ValidateRelationName(name string) error {
	if pr := relationProblem(name); !pr.ok() {
		return validationError("relation name", name, pr)
	}
	return nil
}

// ValidateCaveatName checks a caveat name.
func ValidateCaveatName(name string) error {
	if pr := caveatNameProblem(name); !pr.ok() {
		return validationError("caveat name", name, pr)
	}
	return nil
}

// ValidateObjectID checks an object ID; the wildcard is accepted only when
// wildcardOK (a subject ID).
func ValidateObjectID(id string, wildcardOK bool) error {
	if id == Wildcard {
		if wildcardOK {
			return nil
		}
		return &ValidationError{Part: "object id", Value: id, Message: "the wildcard * may only be a subject id"}
	}
	if pr := objectIDProblem(id); !pr.ok() {
		return validationError("object id", id, pr)
	}
	return nil
}
