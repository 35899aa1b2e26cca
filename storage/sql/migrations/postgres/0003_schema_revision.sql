-- The revision of the newest schema version, kept in the revision
-- counter's row. Every write reads it with the statement that takes the
-- counter's lock, so a write guarded by the schema it was validated
-- against checks the guard without another round trip while writers wait;
-- a schema write sets it in its own transaction.

ALTER TABLE revision_counter ADD COLUMN IF NOT EXISTS schema_rev BIGINT NOT NULL DEFAULT 0;

-- Running this again sets the same value.
UPDATE revision_counter SET schema_rev = (SELECT COALESCE(MAX(revision), 0) FROM schemas) WHERE id = 1;
