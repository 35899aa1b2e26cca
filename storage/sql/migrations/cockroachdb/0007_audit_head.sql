-- A write no longer keeps the audit chain's head on the revision counter's
-- row, which made it update that row a second time: after taking the
-- counter's lock it reads the head — the newest entry's hash, which ends
-- its value — in the same round trip. Writes still chain one
-- after another across servers, since each reads the head while holding
-- the lock, after the previous write committed.
--
-- When a trim has removed every entry, the head is the hash of the newest
-- entry trimmed, which TrimAudit keeps in audit_index.trimmed_hash. It
-- starts as the counter's head: it is read only when no entry is left,
-- and then that head is the newest trimmed entry's.
ALTER TABLE audit_index ADD COLUMN IF NOT EXISTS trimmed_hash BYTES;

UPDATE audit_index SET trimmed_hash = (SELECT audit_hash FROM revision_counter WHERE id = 1)
WHERE id = 1 AND trimmed_hash IS NULL;

-- revision_counter.audit_hash stays empty: a server of an earlier version
-- still running would chain its entries to it, so its writes fail instead
-- of breaking the chain. The constraint is dropped first so that the
-- migration can run again.
UPDATE revision_counter SET audit_hash = NULL WHERE id = 1;

ALTER TABLE revision_counter DROP CONSTRAINT IF EXISTS revision_counter_audit_hash_unused;
ALTER TABLE revision_counter ADD CONSTRAINT revision_counter_audit_hash_unused CHECK (audit_hash IS NULL);
