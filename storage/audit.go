package storage

import (
	"context"
	"iter"
	"time"

	"github.com/pembadb/pemba/graph"
)

// Label is a free-form key=value pair a client attaches to a write — who
// requested it, who approved it, which ticket — recorded in the audit log.
type Label struct {
	Key, Value string
}

// AuditKind says which operation wrote an audit entry.
type AuditKind byte

const (
	// AuditWrite is a relationship write (Write).
	AuditWrite AuditKind = iota + 1
	// AuditDelete is a filtered delete (DeleteRelationships).
	AuditDelete
	// AuditImport is one batch of a bulk import (Import).
	AuditImport
	// AuditSchema is a schema write (WriteSchema).
	AuditSchema
)

func (k AuditKind) String() string {
	switch k {
	case AuditWrite:
		return "write"
	case AuditDelete:
		return "delete"
	case AuditImport:
		return "import"
	case AuditSchema:
		return "schema"
	}
	return "unknown"
}

// AuditChange is one relationship a revision changed, as the audit log
// records it: Op is the operation that took effect (OpCreate, OpTouch or
// OpDelete) and Relationship is the whole relationship — for a delete, the
// version that was removed, with its caveat and expiration.
type AuditChange struct {
	Op           Op
	Relationship graph.Relationship
}

// SchemaChange is one element a schema write added or removed.
type SchemaChange struct {
	// Added is true for an addition, false for a removal.
	Added bool
	// Kind is "definition", "caveat", "relation" or "permission".
	Kind string
	// Name is the element's name: "document", "document#viewer", "ip_allowed".
	Name string
	// Detail is the element's new source text for a changed relation or
	// permission (Kind "relation"/"permission" removed and added again), or "".
	Detail string
}

// AuditHash is the SHA-256 hash that chains an audit entry to the one
// before it.
type AuditHash [32]byte

// AuditEntry is one committed revision as the audit log records it.
type AuditEntry struct {
	Revision    Revision
	CommittedAt time.Time
	Kind        AuditKind
	Metadata    WriteMetadata
	// Changes are the relationships the revision changed, in the order
	// the write listed them (a filtered delete: forward-query order).
	Changes []AuditChange
	// Schema is the schema diff of an AuditSchema entry.
	Schema []SchemaChange
	// PrevHash is the Hash of the entry written before this one (zero for
	// the first entry the log ever held); Hash covers every field above
	// and PrevHash (see package storage/auditlog).
	PrevHash, Hash AuditHash
}

// RawAuditEntry is an audit entry as an engine stores it: its revision
// and its encoding (auditlog.Encode), which engines store and return
// byte for byte.
type RawAuditEntry struct {
	Revision Revision
	Value    []byte
}

// AuditLog is an engine's permanent record of committed writes, kept
// apart from relationship history: garbage collection never touches it,
// only TrimAudit does. Every engine writes a revision's entry in the same
// transaction as the revision itself (conformance subtest "AuditAtomic"),
// so a committed write always has its entry and a failed one never does.
//
// Entries are encoded, hashed and indexed by the engine-neutral package
// storage/auditlog: the engine stores each entry's encoding under its
// revision, each of its index terms (auditlog.Terms) as a (term,
// revision) pair and its object filter (auditlog.Filter) when it has one,
// and answers the range queries below. Engines opened
// with the audit log disabled store nothing and return nothing.
type AuditLog interface {
	// AuditEntries streams the entries with revisions in [from, to] (to 0:
	// no upper bound), ascending, or descending when desc is set.
	AuditEntries(ctx context.Context, from, to Revision, desc bool) iter.Seq2[RawAuditEntry, error]
	// AuditTermRevisions streams the revisions in [from, to] (to 0: no
	// upper bound) of the entries indexed under term, ascending or
	// descending, each once.
	AuditTermRevisions(ctx context.Context, term string, from, to Revision, desc bool) iter.Seq2[Revision, error]
	// AuditFilter returns the object filter stored with the entry of rev
	// (auditlog.Filter; import entries have one); ok is false when there
	// is none.
	AuditFilter(ctx context.Context, rev Revision) (filter []byte, ok bool, err error)
	// AuditEntry returns the entry of one revision; ok is false when the
	// log holds none (trimmed, not audited, or not committed).
	AuditEntry(ctx context.Context, rev Revision) (entry RawAuditEntry, ok bool, err error)
	// AuditRevisionAt returns the newest audited revision committed at or
	// before t, or 0 when there is none.
	AuditRevisionAt(ctx context.Context, t time.Time) (Revision, error)
	// TrimAudit removes every entry committed before `before`, with its
	// index terms, and reports how many it removed. The chain stays
	// verifiable from the oldest remaining entry.
	TrimAudit(ctx context.Context, before time.Time) (int, error)
}
