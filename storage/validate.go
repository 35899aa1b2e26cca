package storage

import (
	"encoding/json"
	"fmt"

	"github.com/pembadb/pemba/graph"
)

// Limits every engine enforces on stored values. They match SpiceDB's
// defaults so relationships move between the two without surprises.
const (
	// MaxNameLength bounds a type, relation or caveat name (each segment of
	// a namespaced type such as `org/document` counts separately).
	MaxNameLength = 64
	// MaxTypeLength bounds a whole object type, namespace prefixes included.
	MaxTypeLength = 128
	// MaxObjectIDLength bounds an object ID.
	MaxObjectIDLength = 1024
	// MaxCaveatContextBytes bounds a caveat context, measured as JSON.
	MaxCaveatContextBytes = 4096
)

// invalid builds an error wrapping ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// ValidateRelationship checks that r can be stored: well-formed names and
// IDs, a wildcard only as a plain subject, and a caveat context that is
// JSON-encodable and within MaxCaveatContextBytes. Errors wrap
// ErrInvalidArgument and name the offending field.
func ValidateRelationship(r graph.Relationship) error {
	if err := checkType("resource type", r.Resource.Type); err != nil {
		return err
	}
	if err := checkID("resource id", r.Resource.ID, false); err != nil {
		return err
	}
	if err := checkName("relation", r.Relation); err != nil {
		return err
	}
	if err := checkType("subject type", r.Subject.Object.Type); err != nil {
		return err
	}
	if err := checkID("subject id", r.Subject.Object.ID, true); err != nil {
		return err
	}
	if r.Subject.Relation != "" {
		if r.Subject.IsWildcard() {
			return invalid("subject relation: a wildcard subject %s:* cannot have a relation", r.Subject.Object.Type)
		}
		if err := checkName("subject relation", r.Subject.Relation); err != nil {
			return err
		}
	}
	if c := r.Caveat; c != nil {
		if err := checkName("caveat name", c.Name); err != nil {
			return err
		}
		if _, err := EncodeCaveatContext(c.Context); err != nil {
			return err
		}
	}
	if r.Expiration != nil && r.Expiration.IsZero() {
		return invalid("expiration: zero time")
	}
	return nil
}

// EncodeCaveatContext returns the JSON form of a caveat context (nil for an
// empty one), or an error wrapping ErrInvalidArgument when it cannot be
// encoded or exceeds MaxCaveatContextBytes.
func EncodeCaveatContext(ctx map[string]any) ([]byte, error) {
	if len(ctx) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(ctx)
	if err != nil {
		return nil, invalid("caveat context: %v", err)
	}
	if len(b) > MaxCaveatContextBytes {
		return nil, invalid("caveat context: %d bytes exceeds the limit of %d", len(b), MaxCaveatContextBytes)
	}
	return b, nil
}

// Validate checks a Filter: ResourceIDs need ResourceType, every name and ID
// is well formed, and a subject filter names its type.
func (f Filter) Validate() error {
	if f.ResourceType != "" {
		if err := checkType("filter resource type", f.ResourceType); err != nil {
			return err
		}
	}
	if len(f.ResourceIDs) > 0 && f.ResourceType == "" {
		return invalid("filter resource ids: require a resource type")
	}
	for _, id := range f.ResourceIDs {
		if err := checkID("filter resource id", id, false); err != nil {
			return err
		}
	}
	if f.Relation != "" {
		if err := checkName("filter relation", f.Relation); err != nil {
			return err
		}
	}
	if f.Subject != nil {
		return f.Subject.validate("filter subject")
	}
	return nil
}

// IsEmpty reports whether the filter matches every relationship.
func (f Filter) IsEmpty() bool {
	return f.ResourceType == "" && len(f.ResourceIDs) == 0 && f.Relation == "" && f.Subject == nil
}

// Validate checks a ReverseFilter: the subject type is required.
func (f ReverseFilter) Validate() error {
	if err := f.Subject.validate("reverse filter subject"); err != nil {
		return err
	}
	if f.ResourceType != "" {
		if err := checkType("reverse filter resource type", f.ResourceType); err != nil {
			return err
		}
	}
	if f.Relation != "" {
		if err := checkName("reverse filter relation", f.Relation); err != nil {
			return err
		}
	}
	return nil
}

func (s SubjectFilter) validate(field string) error {
	if s.Type == "" {
		return invalid("%s type: required", field)
	}
	if err := checkType(field+" type", s.Type); err != nil {
		return err
	}
	for _, id := range s.IDs {
		if err := checkID(field+" id", id, true); err != nil {
			return err
		}
	}
	// The ellipsis is spelled "" here, as in graph.SubjectRef; "..." is
	// rejected by checkName so there is one spelling.
	if s.Relation != nil && *s.Relation != "" {
		if err := checkName(field+" relation", *s.Relation); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks query options.
func (o QueryOptions) Validate() error {
	if o.Limit < 0 {
		return invalid("limit: %d is negative", o.Limit)
	}
	return nil
}

// checkType accepts `name` or `prefix/name`, each segment a name.
func checkType(field, s string) error {
	if s == "" {
		return invalid("%s: required", field)
	}
	if len(s) > MaxTypeLength {
		return invalid("%s: %d characters exceeds the limit of %d", field, len(s), MaxTypeLength)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			if err := checkName(field, s[start:i]); err != nil {
				return invalid("%s %q: each segment must be a lowercase name", field, s)
			}
			start = i + 1
		}
	}
	return nil
}

// checkName accepts [a-z][a-z0-9_]* up to MaxNameLength, not ending in '_'.
func checkName(field, s string) error {
	if s == "" {
		return invalid("%s: required", field)
	}
	if len(s) > MaxNameLength {
		return invalid("%s: %d characters exceeds the limit of %d", field, len(s), MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')
		if !ok {
			return invalid("%s %q: must be lowercase letters, digits and '_', starting with a letter", field, s)
		}
	}
	if s[len(s)-1] == '_' {
		return invalid("%s %q: must not end with '_'", field, s)
	}
	return nil
}

// checkID accepts [a-zA-Z0-9/_|\-=+]+ up to MaxObjectIDLength, and `*`
// where a wildcard is allowed.
func checkID(field, s string, wildcardOK bool) error {
	if s == "" {
		return invalid("%s: required", field)
	}
	if s == graph.Wildcard {
		if wildcardOK {
			return nil
		}
		return invalid("%s: a wildcard is only allowed as a subject", field)
	}
	if len(s) > MaxObjectIDLength {
		return invalid("%s: %d characters exceeds the limit of %d", field, len(s), MaxObjectIDLength)
	}
	for i := 0; i < len(s); i++ {
		if !idChar[s[i]] {
			return invalid("%s %q: character %q is not allowed", field, s, s[i])
		}
	}
	return nil
}

var idChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "/_|-=+" {
		t[c] = true
	}
	return t
}()
