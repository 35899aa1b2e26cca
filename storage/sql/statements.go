package sql

import (
	"fmt"
	"strings"

	"github.com/pembadb/pemba/storage"
)

// Every statement here is written in the SQL that PostgreSQL and
// CockroachDB share; dialect_test.go checks them against a list of
// PostgreSQL-only constructs. The statements that differ per dialect are
// the migrations and the PostgreSQL bulk-import path (import.go).

// identity is a relationship's key, in forward-query order.
const identity = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"

// reverseIdentity is the same key in reverse-query order.
const reverseIdentity = "subject_type, subject_id, subject_relation, resource_type, resource_id, relation"

// relColumns are the columns scanRelationship reads, in order.
const relColumns = identity + ", caveat_name, caveat_context, expires_at"

const (
	stmtBounds = "SELECT head, gc_floor FROM revision_counter WHERE id = 1"

	// stmtInstanceID reads the ID migration 0002 drew for this database.
	stmtInstanceID = "SELECT instance_id FROM datastore_instance WHERE id = 1"

	// stmtNextRevision is the first statement of every write: its row lock
	// serializes writers until commit.
	// It also returns, as of the lock, the revision of the newest schema
	// version (what a write's schema guard compares) and the write's
	// commit time: the database's clock, but never before the previous
	// write's, so commit times rise with revisions across every server.
	stmtNextRevision = `UPDATE revision_counter SET head = head + 1, last_commit = greatest(clock_timestamp(), last_commit)
WHERE id = 1 RETURNING head, schema_rev, last_commit`

	// stmtAuditHead reads the audit chain's head, the hash the write's
	// entry chains to: the newest entry's (the last 32 bytes of its
	// value), or when a trim removed them all the newest trimmed one's
	// (NULL before the first entry). Sent right after stmtNextRevision in
	// the same round trip, it runs once the counter's lock is held, with a
	// snapshot taken then (PostgreSQL's READ COMMITTED takes one per
	// statement), so it sees the entry of the write that held the lock
	// before; migration 0007.
	stmtAuditHead = `SELECT coalesce(
  (SELECT substring(value, octet_length(value) - 31) FROM audit_entries ORDER BY revision DESC LIMIT 1),
  (SELECT trimmed_hash FROM audit_index WHERE id = 1))`

	// stmtSetSchemaRevision records a schema write's revision as the newest
	// schema version's.
	stmtSetSchemaRevision = "UPDATE revision_counter SET schema_rev = $1 WHERE id = 1"

	// stmtInsertRevision records a revision with the commit time
	// stmtNextRevision returned, when the audit log is off; with it on,
	// the revision's audit entry is its record (migration 0008).
	stmtInsertRevision = `INSERT INTO revision_records (revision, committed_at, actor, reason, labels, schema_changed)
VALUES ($1, $2, $3, $4, $5, $6)`

	// stmtKeepRevisionRecord records a revision whose audit entry a trim
	// removes before garbage collection has passed it, from the entry.
	stmtKeepRevisionRecord = stmtInsertRevision + "\nON CONFLICT (revision) DO NOTHING"

	// stmtEndVersion ends the live version of one relationship (if any).
	stmtEndVersion = `UPDATE relationships SET deleted_rev = $1
WHERE resource_type = $2 AND resource_id = $3 AND relation = $4
  AND subject_type = $5 AND subject_id = $6 AND subject_relation = $7
  AND deleted_rev IS NULL`

	// stmtRemoveVersion is stmtEndVersion returning the version it ended,
	// for the audit entry of a DELETE.
	stmtRemoveVersion = stmtEndVersion + "\nRETURNING " + relColumns

	stmtInsertVersion = `INSERT INTO relationships (` + relColumns + `, created_rev)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

	// stmtLiveExists finds a live, unexpired version of one relationship.
	stmtLiveExists = `SELECT EXISTS (SELECT 1 FROM relationships
WHERE resource_type = $1 AND resource_id = $2 AND relation = $3
  AND subject_type = $4 AND subject_id = $5 AND subject_relation = $6
  AND deleted_rev IS NULL AND (expires_at IS NULL OR expires_at > $7))`

	stmtInsertSchema = "INSERT INTO schemas (revision, source, compiled) VALUES ($1, $2, $3)"

	stmtReadSchema = `SELECT source, compiled, revision FROM schemas
WHERE revision <= $1 ORDER BY revision DESC LIMIT 1`

	// stmtWatchRevisions reads the records of the revisions after $1, $2
	// at most: a revision record's columns, or for a revision its audit
	// entry records alone, the entry ($7), which holds them.
	stmtWatchRevisions = `SELECT revision, committed_at, actor, reason, labels, schema_changed, NULL::BYTEA FROM revision_records
WHERE revision > $1
UNION ALL
SELECT a.revision, a.committed_at, NULL, NULL, NULL, NULL, a.value FROM audit_entries a
WHERE a.revision > $1 AND NOT EXISTS (SELECT 1 FROM revision_records r WHERE r.revision = a.revision)
ORDER BY 1 LIMIT $2`

	// stmtWatchChanges reads the versions created (kind 1) or ended (kind
	// 2) in revisions ($1, $2], with the revision of that event; a UNION
	// ALL lets each half use its own index.
	stmtWatchChanges = `SELECT 1, created_rev, ` + relColumns + ` FROM relationships
WHERE created_rev > $1 AND created_rev <= $2
UNION ALL
SELECT 2, deleted_rev, ` + relColumns + ` FROM relationships
WHERE deleted_rev > $1 AND deleted_rev <= $2`

	stmtGCLock = "SELECT head FROM revision_counter WHERE id = 1 FOR UPDATE"
	// stmtGCFloorCandidate is the newest revision committed at or before
	// $1, by revision record or audit entry (commit times rise with
	// revisions, so the entries' index finds it at once).
	stmtGCFloorCandidate = `SELECT greatest(
  (SELECT coalesce(max(revision), 0) FROM revision_records WHERE committed_at <= $1),
  (SELECT coalesce((SELECT revision FROM audit_entries WHERE committed_at <= $1
    ORDER BY committed_at DESC, revision DESC LIMIT 1), 0)))`
	stmtRaiseGCFloor = "UPDATE revision_counter SET gc_floor = $1 WHERE id = 1 AND gc_floor < $1"
	// Garbage collection deletes in batches of $2 rows, keeping each
	// transaction short: versions ended at or below the floor ($1), and
	// live versions that expired before the window began ($1, Unix ns).
	stmtGCVersions = `DELETE FROM relationships WHERE (` + identity + `, created_rev) IN (
  SELECT ` + identity + `, created_rev FROM relationships
  WHERE deleted_rev IS NOT NULL AND deleted_rev <= $1 LIMIT $2)`
	stmtGCExpired = `DELETE FROM relationships WHERE (` + identity + `, created_rev) IN (
  SELECT ` + identity + `, created_rev FROM relationships
  WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)`
	stmtGCRevisions = "DELETE FROM revision_records WHERE revision < $1"
	stmtGCSchemas   = `DELETE FROM schemas WHERE revision < (
  SELECT coalesce(max(revision), 0) FROM schemas WHERE revision <= $1)`
)

// The audit log (audit.go).
const (
	// stmtInsertAuditEntry stores a revision's audit entry ($3), which is
	// its record (migration 0008), and its object filter ($4, NULL for
	// most). The entry's index terms are added later, by the indexer
	// (audit_index.go).
	stmtInsertAuditEntry = "INSERT INTO audit_entries (revision, committed_at, value, filter) VALUES ($1, $2, $3, $4)"

	// Reads page through a range of revisions, $1 to $2 inclusive, $3 rows
	// at a time; the next page starts past the last revision read.
	stmtAuditEntries = `SELECT revision, value FROM audit_entries
WHERE revision >= $1 AND revision <= $2 ORDER BY revision LIMIT $3`
	stmtAuditEntriesDesc = `SELECT revision, value FROM audit_entries
WHERE revision >= $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3`
	// A term's posting lists (audit_index.go): those ending at $2 or
	// later, oldest first; and those ending in [$2, $3), newest first.
	stmtAuditTermLists = `SELECT revision, earlier FROM audit_terms
WHERE term = $1 AND revision >= $2 ORDER BY revision LIMIT $3`
	stmtAuditTermListsDesc = `SELECT revision, earlier FROM audit_terms
WHERE term = $1 AND revision >= $2 AND revision < $3 ORDER BY revision DESC LIMIT $4`
	stmtAuditEntry = "SELECT value FROM audit_entries WHERE revision = $1"

	stmtAuditFilter = "SELECT filter FROM audit_entries WHERE revision = $1 AND filter IS NOT NULL"
	// Commit times never decrease with revision, so the newest entry at
	// or before a time is the last one in (committed_at, revision) order.
	stmtAuditRevisionAt = `SELECT revision FROM audit_entries
WHERE committed_at <= $1 ORDER BY committed_at DESC, revision DESC LIMIT 1`

	// TrimAudit reads the oldest entries committed before $1, $2 at a
	// time, and deletes them with their terms (found by decoding them).
	stmtAuditOldest = `SELECT revision, value FROM audit_entries
WHERE committed_at < $1 ORDER BY committed_at, revision LIMIT $2`
	stmtDeleteAuditTerms = `DELETE FROM audit_terms
WHERE (term, revision) IN (SELECT unnest($1::TEXT[]), unnest($2::BIGINT[]))`
	// stmtDeleteAuditTermsOfRevision scans the whole term index: only for
	// an entry too corrupt to decode, whose terms are not known.
	stmtDeleteAuditTermsOfRevision = "DELETE FROM audit_terms WHERE revision = $1"
	stmtDeleteAuditEntries         = "DELETE FROM audit_entries WHERE revision = ANY($1::BIGINT[])"
	// stmtSetAuditTrimmedHash records the hash of the newest entry a trim
	// removed: the chain's head once no entry is left (stmtAuditHead).
	stmtSetAuditTrimmedHash = "UPDATE audit_index SET trimmed_hash = $1 WHERE id = 1"

	// The term indexer (audit_index.go) locks the indexed-through mark,
	// reads the entries above it, stores their terms and advances it.
	stmtLockAuditIndex = "SELECT indexed_through FROM audit_index WHERE id = 1 FOR UPDATE"
	stmtAuditIndexed   = "SELECT indexed_through FROM audit_index WHERE id = 1"
	// stmtAuditIndexedOldest is the mark and the oldest entry kept, below
	// which a posting list cut by a trim names nothing.
	stmtAuditIndexedOldest = `SELECT indexed_through, (SELECT coalesce(min(revision), 0) FROM audit_entries)
FROM audit_index WHERE id = 1`
	stmtInsertAuditTerms = `INSERT INTO audit_terms (term, revision, earlier)
SELECT unnest($1::TEXT[]), unnest($2::BIGINT[]), unnest($3::BYTEA[]) ON CONFLICT DO NOTHING`
	stmtAdvanceAuditIndex = "UPDATE audit_index SET indexed_through = $1 WHERE id = 1"
)

// stmtAuditIndexLag reads the mark and the newest entry without locking,
// so an idle indexer writes nothing.
const stmtAuditIndexLag = `SELECT indexed_through, (SELECT coalesce(max(revision), 0) FROM audit_entries)
FROM audit_index WHERE id = 1`

// stmtUnindexedEntries reads the entries above the mark, oldest first.
const stmtUnindexedEntries = `SELECT revision, value FROM audit_entries
WHERE revision > $1 ORDER BY revision LIMIT $2`

// query is a statement under construction with its positional arguments.
// Values, limits included, are always arguments, so the statement text
// depends only on the filter's shape and pgx's prepared-statement cache
// stays small.
type query struct {
	sql  strings.Builder
	args []any
}

// arg appends a positional argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

func (q *query) printf(format string, a ...any) { fmt.Fprintf(&q.sql, format, a...) }

// String is the statement text.
func (q *query) String() string { return q.sql.String() }

// eqOrAny matches col against one value or any of several.
func (q *query) eqOrAny(col string, values []string) {
	if len(values) == 1 {
		q.printf(" AND %s = %s", col, q.arg(values[0]))
		return
	}
	q.printf(" AND %s = ANY(%s)", col, q.arg(values))
}

// filter appends the conditions of a Filter.
func (q *query) filter(f storage.Filter) {
	if f.ResourceType != "" {
		q.printf(" AND resource_type = %s", q.arg(f.ResourceType))
	}
	if len(f.ResourceIDs) > 0 {
		q.eqOrAny("resource_id", f.ResourceIDs)
	}
	if f.ResourceIDPrefix != "" {
		q.idPrefix("resource_id", f.ResourceIDPrefix)
	}
	if f.Relation != "" {
		q.printf(" AND relation = %s", q.arg(f.Relation))
	}
	if f.Subject != nil {
		q.subject(*f.Subject)
	}
}

// idPrefix matches the values of col that start with prefix as a range of
// the bytewise (COLLATE "C") order the identity columns use, so the
// primary key serves it: [prefix, prefix with its last byte incremented).
// Valid IDs hold no byte 0xff, so the bound always exists.
func (q *query) idPrefix(col, prefix string) {
	q.printf(" AND %s >= %s", col, q.arg(prefix))
	upper := []byte(prefix)
	upper[len(upper)-1]++
	q.printf(" AND %s < %s", col, q.arg(string(upper)))
}

func (q *query) subject(s storage.SubjectFilter) {
	q.printf(" AND subject_type = %s", q.arg(s.Type))
	if len(s.IDs) > 0 {
		q.eqOrAny("subject_id", s.IDs)
	}
	if s.Relation != nil {
		q.printf(" AND subject_relation = %s", q.arg(*s.Relation))
	}
}

// visibleAt restricts to versions visible at rev and unexpired at now
// (Unix nanoseconds).
func (q *query) visibleAt(rev storage.Revision, now int64) {
	r := q.arg(int64(rev))
	q.printf(" AND created_rev <= %s AND (deleted_rev IS NULL OR deleted_rev > %s)", r, r)
	q.printf(" AND (expires_at IS NULL OR expires_at > %s)", q.arg(now))
}

// live restricts to current, unexpired versions.
func (q *query) live(now int64) {
	q.printf(" AND deleted_rev IS NULL AND (expires_at IS NULL OR expires_at > %s)", q.arg(now))
}

// after appends a keyset-pagination bound: the row tuple in the query's
// order strictly greater than the cursor's.
func (q *query) after(order string, key [6]string) {
	ph := make([]string, 6)
	for i, v := range key {
		ph[i] = q.arg(v)
	}
	q.printf(" AND (%s) > (%s)", order, strings.Join(ph, ", "))
}

// forwardQuery selects a page of a forward query at rev.
func forwardQuery(f storage.Filter, rev storage.Revision, now int64, after *[6]string, limit int) *query {
	q := &query{}
	q.printf("SELECT %s FROM relationships WHERE TRUE", relColumns)
	q.filter(f)
	q.visibleAt(rev, now)
	if after != nil {
		q.after(identity, *after)
	}
	q.printf(" ORDER BY %s LIMIT %s", identity, q.arg(limit))
	return q
}

// reverseQuery selects a page of a reverse query at rev.
func reverseQuery(f storage.ReverseFilter, rev storage.Revision, now int64, after *[6]string, limit int) *query {
	q := &query{}
	q.printf("SELECT %s FROM relationships WHERE TRUE", relColumns)
	q.subject(f.Subject)
	if f.ResourceType != "" {
		q.printf(" AND resource_type = %s", q.arg(f.ResourceType))
	}
	if f.Relation != "" {
		q.printf(" AND relation = %s", q.arg(f.Relation))
	}
	q.visibleAt(rev, now)
	if after != nil {
		q.after(reverseIdentity, *after)
	}
	q.printf(" ORDER BY %s LIMIT %s", reverseIdentity, q.arg(limit))
	return q
}

// matchExistsQuery asks whether any live relationship matches f (a
// precondition, or whether a limited delete left matches behind).
func matchExistsQuery(f storage.Filter, now int64) *query {
	q := &query{}
	q.printf("SELECT EXISTS (SELECT 1 FROM relationships WHERE TRUE")
	q.filter(f)
	q.live(now)
	q.printf(")")
	return q
}

// deleteQuery ends the live versions matching f at rev, the first limit of
// them in forward order when limit > 0; with returning set it returns
// them (relColumns, in no particular order).
func deleteQuery(f storage.Filter, rev storage.Revision, now int64, limit int, returning bool) *query {
	q := &query{}
	q.printf("UPDATE relationships SET deleted_rev = %s WHERE TRUE", q.arg(int64(rev)))
	if limit <= 0 {
		q.filter(f)
		q.live(now)
	} else {
		q.printf(" AND deleted_rev IS NULL AND (%s) IN (SELECT %s FROM relationships WHERE TRUE", identity, identity)
		q.filter(f)
		q.live(now)
		q.printf(" ORDER BY %s LIMIT %s)", identity, q.arg(limit))
	}
	if returning {
		q.printf(" RETURNING %s", relColumns)
	}
	return q
}
