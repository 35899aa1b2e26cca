package storage

import (
	"encoding/json"
	"fmt"

	"github.com/pembadb/pemba/graph"
)

// Limits every engine enforces on stored values. The naming limits are
// graph's (SpiceDB's); the caveat context limit is SpiceDB's default. A
// caveat context also nests at most graph.MaxCaveatContextDepth levels.
const (
	// MaxNameLength bounds a relation name and the last segment of a type.
	MaxNameLength = graph.MaxRelationBytes
	// MaxTypeLength bounds a whole object type, namespace prefixes included.
	MaxTypeLength = graph.MaxTypeNameBytes
	// MaxObjectIDLength bounds an object ID.
	MaxObjectIDLength = graph.MaxObjectIDBytes
	// MaxCaveatContextBytes bounds a caveat context, measured as JSON.
	MaxCaveatContextBytes = 4096
)

// invalid builds an error wrapping ErrInvalidArgument.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// invalidErr wraps a graph validation error so that it matches both
// ErrInvalidArgument and graph.ErrInvalid.
func invalidErr(field string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalidArgument, field, err)
}

// ValidateRelationship checks that r can be stored: graph's rules
// (Relationship.Validate), a non-zero expiration, and a caveat context that
// is JSON-encodable within MaxCaveatContextBytes. Errors wrap
// ErrInvalidArgument and name the offending field.
func ValidateRelationship(r graph.Relationship) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if c := r.Caveat; c != nil {
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
// encoded, nests deeper than graph.MaxCaveatContextDepth or exceeds
// MaxCaveatContextBytes.
func EncodeCaveatContext(ctx map[string]any) ([]byte, error) {
	if len(ctx) == 0 {
		return nil, nil
	}
	// Checked first: encoding recurses once per level.
	for k, v := range ctx {
		if err := graph.ValidateContextDepth(k, v); err != nil {
			return nil, invalidErr("caveat context", err)
		}
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

// Validate checks a Filter: ResourceIDs and ResourceIDPrefix need
// ResourceType, every name, ID and prefix is well formed, and a subject
// filter names its type.
func (f Filter) Validate() error {
	if f.ResourceType != "" {
		if err := graph.ValidateTypeName(f.ResourceType); err != nil {
			return invalidErr("filter resource type", err)
		}
	}
	if len(f.ResourceIDs) > 0 && f.ResourceType == "" {
		return invalid("filter resource ids: require a resource type")
	}
	for _, id := range f.ResourceIDs {
		if err := graph.ValidateObjectID(id, false); err != nil {
			return invalidErr("filter resource id", err)
		}
	}
	if f.ResourceIDPrefix != "" {
		switch {
		case f.ResourceType == "":
			return invalid("filter resource id prefix: requires a resource type")
		case len(f.ResourceIDs) > 0:
			return invalid("filter resource id prefix: give resource ids or a prefix, not both")
		}
		if err := graph.ValidateObjectID(f.ResourceIDPrefix, false); err != nil {
			return invalidErr("filter resource id prefix", err)
		}
	}
	if f.Relation != "" {
		if err := graph.ValidateRelationName(f.Relation); err != nil {
			return invalidErr("filter relation", err)
		}
	}
	if f.Subject != nil {
		return f.Subject.validate("filter subject")
	}
	return nil
}

// IsEmpty reports whether the filter matches every relationship.
func (f Filter) IsEmpty() bool {
	return f.ResourceType == "" && len(f.ResourceIDs) == 0 && f.ResourceIDPrefix == "" && f.Relation == "" && f.Subject == nil
}

// Validate checks a ReverseFilter: the subject type is required.
func (f ReverseFilter) Validate() error {
	if err := f.Subject.validate("reverse filter subject"); err != nil {
		return err
	}
	if f.ResourceType != "" {
		if err := graph.ValidateTypeName(f.ResourceType); err != nil {
			return invalidErr("reverse filter resource type", err)
		}
	}
	if f.Relation != "" {
		if err := graph.ValidateRelationName(f.Relation); err != nil {
			return invalidErr("reverse filter relation", err)
		}
	}
	return nil
}

func (s SubjectFilter) validate(field string) error {
	if s.Type == "" {
		return invalid("%s type: required", field)
	}
	if err := graph.ValidateTypeName(s.Type); err != nil {
		return invalidErr(field+" type", err)
	}
	for _, id := range s.IDs {
		if err := graph.ValidateObjectID(id, true); err != nil {
			return invalidErr(field+" id", err)
		}
	}
	// The ellipsis is spelled "" here, as in graph.SubjectRef; "..." is
	// rejected so there is one spelling.
	if s.Relation != nil && *s.Relation != "" {
		if err := graph.ValidateRelationName(*s.Relation); err != nil {
			return invalidErr(field+" relation", err)
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
