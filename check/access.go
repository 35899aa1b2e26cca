package check

import (
	"errors"
	"time"

	"github.com/pembadb/pemba/graph"
)

// ErrAccessTooLarge: answering one permission of an access analysis that
// must hold its answer at once needed more than Config.MaxAccessObjects
// objects in memory: a WhoCanAccess permission a wildcard grants (or set
// evaluation leaves to checks), a WhatCanAccess permission whose lookup
// does not stream in ID order (a type that reaches itself, see
// lookupOrdered). Asking for fewer
// permissions or types does not help a single permission that large.
var ErrAccessTooLarge = errors.New("access analysis too large")

// Holding is one way an access is held; an AccessRow lists every way its
// path uses. The values mirror pemba.v1.Holding.
type Holding int

const (
	// HoldingDirect: a relationship on the resource itself names the
	// subject.
	HoldingDirect Holding = 1
	// HoldingGroup: through membership of a subject set (a group, a team,
	// a role).
	HoldingGroup Holding = 2
	// HoldingParent: through an arrow to another object (a parent folder,
	// an org).
	HoldingParent Holding = 3
	// HoldingWildcard: through a wildcard relationship (every object of
	// the subject's type).
	HoldingWildcard Holding = 4
	// HoldingCaveated: a caveat on the path is part of the grant.
	HoldingCaveated Holding = 5
)

func (h Holding) String() string {
	switch h {
	case HoldingDirect:
		return "direct"
	case HoldingGroup:
		return "group"
	case HoldingParent:
		return "parent"
	case HoldingWildcard:
		return "wildcard"
	case HoldingCaveated:
		return "caveated"
	}
	return "unspecified"
}

// AccessRow is one answer row of WhoCanAccess and WhatCanAccess: Subject
// holds Permission on Resource.
type AccessRow struct {
	Resource   graph.ObjectRef
	Permission string
	// Subject holds the access. A wildcard row ("every user except ...")
	// has Subject.Object.ID "*" and lists the exceptions in Excluded, by
	// ID, sorted.
	Subject  graph.SubjectRef
	Excluded []string
	// Permissionship is HasPermission, or Conditional with the caveat
	// parameters the request's context lacks in Missing (sorted).
	Permissionship Permissionship
	Missing        []string
	// Path is one shortest access path that proves the access.
	Path *Path
	// EndsAt is when the access ends if nothing is written: the first
	// instant after the request's Now at which no granting path remains.
	// Zero for a standing access (some granting path never expires).
	EndsAt time.Time
	// Holdings say how the access is held, from Path: sorted, unique.
	Holdings []Holding
	// Cursor resumes the query strictly after this row.
	Cursor AccessCursor
}

// WhoRequest asks which subjects hold permissions on Resource.
type WhoRequest struct {
	Resource graph.ObjectRef
	// Permissions are the permissions (or relations) asked about; empty
	// means every permission of the resource's definition (every relation
	// when it defines no permission).
	Permissions []string
	// SubjectTypes keeps only subjects of these types; empty means every
	// type that can reach a permission asked about.
	SubjectTypes []string
	Context      map[string]any
	// Now is the instant expirations are judged at; zero means time.Now().
	Now time.Time
	// After resumes strictly after the row that carried it (nil starts
	// over). It must come from a WhoCanAccess on the same resource, and
	// the call must read the cursor's revision.
	After *AccessCursor
}

// WhatRequest asks which resources and permissions Subject holds.
type WhatRequest struct {
	Subject graph.SubjectRef
	// ResourceTypes keeps only resources of these types; empty means
	// every type with a permission the subject's type can reach.
	ResourceTypes []string
	// Permissions keeps only these permissions (or relations); empty
	// means every permission of each resource type (every relation of a
	// type that defines no permission).
	Permissions []string
	Context     map[string]any
	// Now is the instant expirations are judged at; zero means time.Now().
	Now time.Time
	// After resumes strictly after the row that carried it (nil starts
	// over). It must come from a WhatCanAccess for the same subject, and
	// the call must read the cursor's revision.
	After *AccessCursor
}
