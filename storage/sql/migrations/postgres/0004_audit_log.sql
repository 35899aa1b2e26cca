-- The audit log: every committed revision's entry (storage/auditlog's
-- encoding, byte for byte) and the index terms it is found by. Garbage
-- collection never touches these tables: only TrimAudit removes entries,
-- oldest first.
--
-- The chain's head (the newest entry's hash) and the newest commit time
-- live in the revision counter's row. A write reads both with the
-- statement that takes the counter's lock, so writes from every server on
-- the database chain one after another and their commit times never go
-- back, and the write sets the new head before it commits. audit_hash is NULL
-- until the first entry is written (the first entry chains to the zero
-- hash).

ALTER TABLE revision_counter ADD COLUMN IF NOT EXISTS audit_hash BYTEA;
ALTER TABLE revision_counter ADD COLUMN IF NOT EXISTS last_commit TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01 00:00:00+00';

-- Commit times continue from the newest revision already written. Running
-- this again changes nothing: last_commit is never older than it.
UPDATE revision_counter SET last_commit = coalesce((SELECT max(committed_at) FROM revisions), last_commit) WHERE id = 1;

-- A write's labels, sorted by key then value, flattened to key, value,
-- key, value... (NULL when it has none).
ALTER TABLE revisions ADD COLUMN IF NOT EXISTS labels TEXT[];

-- committed_at is the entry's own commit time (revisions.committed_at of
-- the same revision), never decreasing with revision: the index finds the
-- revision in force at a time, and the entries a trim removes. filter is
-- the Bloom filter of a large import batch's objects, which are indexed by
-- their types only (storage/auditlog).
CREATE TABLE IF NOT EXISTS audit_entries (
    revision     BIGINT PRIMARY KEY,
    committed_at TIMESTAMPTZ NOT NULL,
    value        BYTEA NOT NULL,
    filter       BYTEA  -- the object filter of a large import batch (auditlog.Filter), else NULL
);

CREATE INDEX IF NOT EXISTS audit_entries_committed_at ON audit_entries (committed_at, revision);

-- One row per (term, entry): a term's entries in revision order are one
-- range of the primary key. Terms compare bytewise.
CREATE TABLE IF NOT EXISTS audit_terms (
    term     TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (term, revision)
);
