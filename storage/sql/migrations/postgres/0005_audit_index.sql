-- The audit log's term index is written behind the log: a write stores its
-- entry only, and a background indexer on any server adds the entry's rows
-- to audit_terms later, many entries per transaction, and advances
-- indexed_through. Term queries read audit_terms up to indexed_through and
-- decode the entries above it, so they see every committed entry.
--
-- Writes commit in revision order (each holds the revision counter's lock
-- until it commits), so an indexer that sees entry r has seen every entry
-- before it. The indexer and TrimAudit lock this row, so a trim never races
-- an indexer adding the terms of an entry it removes. Every entry written
-- before this migration was indexed with its write.
CREATE TABLE IF NOT EXISTS audit_index (
    id              INT PRIMARY KEY CHECK (id = 1),
    indexed_through BIGINT NOT NULL
);

INSERT INTO audit_index (id, indexed_through)
SELECT 1, coalesce(max(revision), 0) FROM audit_entries
ON CONFLICT (id) DO NOTHING;
