package graph

import "time"

// Ellipsis is the subject relation written `#...`: "the object itself, no
// relation". In SubjectRef it is stored as the empty string.
const Ellipsis = "..."

// Wildcard is the object ID that stands for every object of a type (`user:*`).
const Wildcard = "*"

// ObjectRef names one object: `type:id`.
type ObjectRef struct {
	Type string
	ID   string
}

// SubjectRef names a subject: an object (`user:alice`), a wildcard
// (`user:*`) or a subject set (`group:eng#member`). Relation is empty for
// a plain object or wildcard.
type SubjectRef struct {
	Object   ObjectRef
	Relation string
}

// IsWildcard reports whether the subject is `type:*`.
func (s SubjectRef) IsWildcard() bool { return s.Object.ID == Wildcard }

// Caveat is a named caveat attached to a relationship, with the context
// values written alongside it. Context values are JSON-compatible
// (string, float64, bool, nil, []any, map[string]any).
type Caveat struct {
	Name    string
	Context map[string]any
}

// Relationship is `resource#relation@subject` with an optional caveat and an
// optional expiration. A relationship whose Expiration is at or before "now"
// is invisible to every read.
type Relationship struct {
	Resource   ObjectRef
	Relation   string
	Subject    SubjectRef
	Caveat     *Caveat
	Expiration *time.Time
}
