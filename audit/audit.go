package audit

import (
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Query selects audit events. Zero fields match everything.
type Query struct {
	// ResourceType and ResourceID select changes to relationships of one
	// resource type, or of one resource (ResourceID needs ResourceType).
	ResourceType, ResourceID string
	// Relation selects changes to relationships with this relation.
	Relation string
	// SubjectType and SubjectID select changes to relationships whose
	// subject is of this type, or is this object (SubjectID needs
	// SubjectType); SubjectRelation narrows to subjects with that relation
	// ("..." for none).
	SubjectType, SubjectID, SubjectRelation string
	// Actor selects the changes written by one actor.
	Actor string
	// Labels selects the changes written with every one of these labels.
	Labels []storage.Label
	// Since and Until bound event times to [Since, Until); zero is open.
	Since, Until time.Time
	// MinRevision and MaxRevision bound revisions to [Min, Max]; 0 is open.
	MinRevision, MaxRevision storage.Revision
	// NewestFirst orders events newest first (the default is oldest first).
	NewestFirst bool
	// After resumes after the event whose Cursor it is.
	After string
	// Limit caps the events returned; 0 means no limit.
	Limit int
	// Now is the instant expirations are derived up to (zero: time.Now()).
	Now time.Time
	// NoExpirations leaves out derived "expired" events.
	NoExpirations bool
	// Kinds, when not empty, keeps only events of these kinds.
	Kinds []EventKind
}

// EventKind is what an event records.
type EventKind int

const (
	// Created: a CREATE wrote a relationship.
	Created EventKind = iota + 1
	// Touched: a TOUCH (or an import) wrote a relationship, new or replacing one.
	Touched
	// Deleted: a relationship was deleted (a write, a filtered delete).
	Deleted
	// Expired: a relationship's expiration passed while it was live; derived,
	// no write records it.
	Expired
	// SchemaChanged: a schema write added or removed an element.
	SchemaChanged
)

func (k EventKind) String() string {
	switch k {
	case Created:
		return "created"
	case Touched:
		return "touched"
	case Deleted:
		return "deleted"
	case Expired:
		return "expired"
	case SchemaChanged:
		return "schema"
	}
	return "unknown"
}

// Event is one change, with the entry that recorded it.
type Event struct {
	Kind EventKind
	// Time is the commit time, or for Expired the expiration.
	Time time.Time
	// Revision is the revision of the entry that recorded the change; for
	// Expired, the entry that wrote the expiring relationship.
	Revision storage.Revision
	// Entry is the entry's kind, metadata (actor, reason, labels) and hash.
	EntryKind storage.AuditKind
	Metadata  storage.WriteMetadata
	Hash      storage.AuditHash
	// Relationship is the relationship changed (relationship events).
	Relationship graph.Relationship
	// Schema is the schema element changed (SchemaChanged events).
	Schema storage.SchemaChange
	// Cursor resumes a query after this event (Query.After).
	Cursor string

	// index is the change's position in its entry (Changes, then Schema).
	index int
}
