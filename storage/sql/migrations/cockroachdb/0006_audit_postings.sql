-- The term indexer writes one row per term and indexer batch instead of
-- one per term and entry: a posting list. revision is the list's newest
-- revision; earlier holds the older ones as varint gaps going down from it
-- (storage/auditlog's posting-list encoding), NULL for a list of one.
-- Every row written before this migration is such a list of one. A trim
-- deletes the lists whose newest revision it removes; readers skip the
-- revisions below the oldest entry that a list cut by a trim still names.
ALTER TABLE audit_terms ADD COLUMN IF NOT EXISTS earlier BYTES;
