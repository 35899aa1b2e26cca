package storage

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/pembadb/pemba/graph"
)

// Revision is a totally ordered snapshot token. 0 is the empty store before
// any write; every committed write gets a revision strictly greater than all
// earlier ones.
type Revision uint64

// Typed errors callers branch on. Engines wrap them with context; test with
// errors.Is / errors.As.
var (
	// ErrRevisionTooOld: the revision is below the garbage-collection window.
	ErrRevisionTooOld = errors.New("revision is older than the garbage-collection window")
	// ErrRevisionUnknown: the revision is newer than any committed one.
	ErrRevisionUnknown = errors.New("revision is not known to this datastore")
	// ErrPreconditionFailed: a write precondition did not hold; nothing was written.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalidArgument: a filter, mutation or option is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrClosed: the engine has been closed.
	ErrClosed = errors.New("datastore is closed")
	// ErrSchemaChanged: a write conditional on the schema (a SchemaRevision
	// guard) found a newer schema at the head; nothing was written. The
	// caller validates against the new schema and tries again.
	ErrSchemaChanged = errors.New("the schema changed since the write was validated")
)

// AlreadyExistsError is returned when a CREATE mutation names a relationship
// that already exists; nothing was written.
type AlreadyExistsError struct{ Relationship graph.Relationship }

func (e *AlreadyExistsError) Error() string {
	return "relationship already exists: " + e.Relationship.Key().String()
}

// Op is a mutation kind.
type Op int

const (
	// OpCreate inserts a relationship; it fails if the relationship exists.
	OpCreate Op = iota + 1
	// OpTouch inserts or replaces a relationship (caveat and expiration included).
	OpTouch
	// OpDelete removes a relationship; absent is not an error.
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "CREATE"
	case OpTouch:
		return "TOUCH"
	case OpDelete:
		return "DELETE"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Mutation is one change in a write. A relationship's identity is
// (resource, relation, subject); caveat and expiration are its payload.
type Mutation struct {
	Op           Op
	Relationship graph.Relationship
}

// SubjectFilter selects subjects. Empty IDs means any ID. Relation nil means
// any relation; a pointer to "" means the subject has no relation (ellipsis).
type SubjectFilter struct {
	Type     string
	IDs      []string
	Relation *string
}

// Filter selects relationships. Empty fields match anything; ResourceIDs
// and ResourceIDPrefix require ResourceType and exclude each other.
type Filter struct {
	ResourceType string
	ResourceIDs  []string
	// ResourceIDPrefix, when set, matches the resources whose ID starts
	// with it: one key range, not a scan of the type.
	ResourceIDPrefix string
	Relation         string
	Subject          *SubjectFilter
}

// Precondition must hold, in the write's transaction, for the write to apply.
type Precondition struct {
	// MustMatch: at least one live relationship matches Filter (true), or
	// none does (false).
	MustMatch bool
	Filter    Filter
}

// WriteMetadata is recorded with a write's revision for the audit trail and
// returned by Watch.
type WriteMetadata struct {
	Actor  string
	Reason string
	// Labels are the request's key=value labels. Engines store them
	// sorted by key, then value, and return them so (Watch, audit log).
	Labels []Label
}

// QueryOptions bound and position a query.
type QueryOptions struct {
	// Limit caps the number of results; 0 means no limit.
	Limit int
	// After resumes strictly after this relationship in the query's order
	// (the cursor is the last relationship a caller received).
	After *graph.Relationship
	// Now is the instant expirations are compared with; zero means
	// time.Now(). Callers evaluating one request pass one instant.
	Now time.Time
}

// ReverseFilter selects relationships by subject, optionally narrowed to a
// resource type and relation.
type ReverseFilter struct {
	Subject      SubjectFilter
	ResourceType string
	Relation     string
}

// Reader reads one snapshot. Forward queries are ordered by (resource type,
// resource id, relation, subject type, subject id, subject relation);
// reverse queries by (subject type, subject id, subject relation, resource
// type, resource id, relation). Each field compares bytewise (Go string
// order, SQL COLLATE "C"); the ellipsis subject relation is "" and sorts
// first. Expired relationships are never returned. Filters and options are
// checked with Validate; a bad one yields a single error wrapping
// ErrInvalidArgument. A Forward query with an empty Filter returns every
// relationship (export). A Reader is safe for concurrent use.
type Reader interface {
	Revision() Revision
	QueryRelationships(ctx context.Context, f Filter, opts QueryOptions) iter.Seq2[graph.Relationship, error]
	ReverseQueryRelationships(ctx context.Context, f ReverseFilter, opts QueryOptions) iter.Seq2[graph.Relationship, error]
	// ReadSchema returns the schema in force at this revision; Text is empty
	// when no schema has been written.
	ReadSchema(ctx context.Context) (StoredSchema, error)
}

// StoredSchema is a schema as stored: its source text, an opaque compiled
// form chosen by the writer, and the revision that wrote it. Engines may
// share Compiled between ReadSchema calls: treat it as read-only.
type StoredSchema struct {
	Text     string
	Compiled []byte
	Revision Revision
}

// WriteRequest is one atomic write. Every relationship must pass
// ValidateRelationship, and a relationship may appear in at most one
// mutation of a request; otherwise the write fails with ErrInvalidArgument
// and nothing is written. A failed precondition wraps ErrPreconditionFailed,
// a CREATE of a live relationship returns *AlreadyExistsError; either way
// nothing is written. Expired relationships count as absent.
type WriteRequest struct {
	Preconditions []Precondition
	Mutations     []Mutation
	Metadata      WriteMetadata
	// SchemaRevision, when not 0, makes the write conditional on the
	// schema: it commits only if the newest schema version at the head is
	// the one written at SchemaRevision — the schema the caller validated
	// the mutations against. Otherwise it fails with ErrSchemaChanged and
	// writes nothing. The check is made in the write's critical section
	// (conformance subtest "SchemaGuard"), so a relationship write and a
	// schema write never interleave.
	SchemaRevision Revision
}

// ImportOptions configure Import.
type ImportOptions struct {
	// BatchSize is how many relationships one revision holds (0: the
	// engine's default).
	BatchSize int
	// Metadata is recorded with every batch's revision.
	Metadata WriteMetadata
	// SchemaRevision, when not 0, guards every batch as it guards a
	// WriteRequest: a batch commits only while the newest schema is the one
	// written at SchemaRevision, and the import stops with ErrSchemaChanged
	// before the first batch that finds a newer one.
	SchemaRevision Revision
}

// SchemaWrite is a schema version to store.
type SchemaWrite struct {
	Schema   StoredSchema
	Metadata WriteMetadata
	// Check, when set, runs inside the write's critical section — after
	// every earlier write has committed and before any later one can —
	// with a Reader at the head the new version will follow. An error
	// from Check aborts the write (nothing is written) and is returned
	// wrapped. Check reads only through the Reader it is given, honours
	// ctx, and should be quick: writers wait for it
	// (conformance subtest "SchemaCheck").
	Check func(ctx context.Context, head Reader) error
	// Diff is what the new version adds and removes, recorded in the
	// audit log.
	Diff []SchemaChange
}

// DeleteResult reports a filtered delete.
type DeleteResult struct {
	Revision Revision
	Deleted  int
	// More is true when Limit stopped the delete before every match was removed.
	More bool
}

// RelationshipChange is one relationship touched or deleted by a revision.
type RelationshipChange struct {
	Op           Op // OpTouch (created or replaced) or OpDelete
	Relationship graph.Relationship
}

// Change is everything one committed revision changed, with its metadata.
type Change struct {
	Revision      Revision
	CommittedAt   time.Time
	Metadata      WriteMetadata
	Relationships []RelationshipChange
	SchemaChanged bool
}

// ImportResult reports a bulk import.
type ImportResult struct {
	Imported  int
	Revisions []Revision // one per committed batch, ascending
}

// Engine is a revisioned relationship store. This comment is the contract
// every engine keeps; each rule names the conformance subtest
// (storagetest.Run) that enforces it.
//
//   - Revisions. 0 is the empty store ("EmptyStore"). Every committed write
//     — Write, DeleteRelationships, WriteSchema, each Import batch — gets a
//     revision strictly greater than every earlier one, also under
//     concurrent writers ("RevisionMonotonicConcurrentWriters"); a failed
//     write commits nothing and moves no revision.
//   - Snapshot visibility. A Reader at R sees exactly the writes committed
//     at or before R, never part of one ("SnapshotIsolation",
//     "AgainstModel"); SnapshotReader refuses R above the head with
//     ErrRevisionUnknown ("RevisionUnknown") and below the GC floor with
//     ErrRevisionTooOld ("GarbageCollection"). The head is always readable.
//   - Atomic checks. A write's preconditions, CREATE conflicts and schema
//     guard are checked against the head in the same critical section as
//     its commit, and any failure writes nothing ("Preconditions",
//     "CreateConflict", "SchemaGuard"); a SchemaWrite's Check runs there
//     too ("SchemaCheck"). The critical section orders writes across every
//     process sharing the datastore: it lives in the datastore (a database
//     transaction), not in a process-local lock.
//   - Mutations. TOUCH replaces caveat and expiration
//     ("TouchReplacesPayload"); DELETE of an absent relationship is a no-op
//     ("DeleteAbsent"); a relationship may appear in only one mutation of a
//     write ("DuplicateMutation"); expired relationships count as absent
//     everywhere ("Expiration"); bad input is refused with
//     ErrInvalidArgument before anything is written ("BadWrites",
//     "BadFilters").
//   - Ordering. Queries stream in the documented order with Limit and an
//     After cursor ("ForwardQueries", "ReverseQueries",
//     "OrderingAndCursors", "IDOrdering", "ExportResume").
//   - Waits. Every method honours ctx: a write still waiting for the write
//     critical section when ctx ends gives up with ctx's error and is never
//     applied later ("WaitHonoursContext"), so a client told its deadline
//     passed is never surprised by the write landing afterwards.
//   - Watch yields every later revision once, in order, with its metadata
//     ("WatchConcurrentWriters", "WatchChanges", "WriteMetadata") and ends
//     without an error when its context does ("WatchCancel").
//   - Results are read-only. Relationships, caveat contexts and
//     StoredSchema.Compiled returned by an engine may be shared with other
//     callers (engines and storage/readcache keep them without copying):
//     callers must not modify them. A Reader is safe for concurrent use
//     ("ReaderConcurrentUse").
//   - Audit. Every committed revision has exactly one audit entry, written
//     in the same transaction, chained by hash to the entry before it
//     ("AuditAtomic", "AuditEntries", "AuditChain"); garbage collection
//     never removes one, TrimAudit does ("AuditRetention"); the term index
//     answers range queries in revision order ("AuditTerms").
//   - Close releases the engine; every later call fails with ErrClosed,
//     and closing again does nothing ("Close").
type Engine interface {
	// HeadRevision is the newest committed revision.
	HeadRevision(ctx context.Context) (Revision, error)
	// SnapshotReader reads at rev. It fails with ErrRevisionTooOld below the
	// GC window and ErrRevisionUnknown above the head.
	SnapshotReader(ctx context.Context, rev Revision) (Reader, error)
	// Write applies the mutations atomically if every precondition holds.
	Write(ctx context.Context, req WriteRequest) (Revision, error)
	// DeleteRelationships deletes up to limit (0: all) live matches in one
	// revision, in forward-query order. The filter must not be empty.
	DeleteRelationships(ctx context.Context, f Filter, limit int, meta WriteMetadata) (DeleteResult, error)
	// WriteSchema stores a new schema version in its own revision, if its
	// Check (when set) passes in the write's critical section.
	WriteSchema(ctx context.Context, w SchemaWrite) (Revision, error)
	// Import writes relationships in batches of opts.BatchSize (TOUCH
	// semantics), one revision per batch; a relationship repeated within a
	// batch ends as its last occurrence. The source is read outside the
	// write critical section, so a slow source never holds up other
	// writers. An invalid relationship fails the import before its batch is
	// written; batches already committed stay, and the result reports them
	// exactly, also when it ends with an error.
	Import(ctx context.Context, rels iter.Seq2[graph.Relationship, error], opts ImportOptions) (ImportResult, error)
	// Watch yields every revision after `after`, in order, including ones
	// committed while watching, until ctx ends (then it returns without an
	// error). `after` below the GC window yields ErrRevisionTooOld, above
	// the head ErrRevisionUnknown.
	Watch(ctx context.Context, after Revision) iter.Seq2[Change, error]
	// CollectGarbage drops history no longer needed to read any revision
	// committed within the GC window before now.
	CollectGarbage(ctx context.Context, now time.Time) error
	AuditLog
	Close() error
}
