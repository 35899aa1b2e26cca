-- With the audit log on, a revision's audit entry is its record: a write
-- stores its commit time, actor, reason and labels once, in its entry, and
-- Watch and garbage collection read them from there. The revisions table
-- keeps the record of revisions written with the log off, and of those
-- whose entry retention trimmed before garbage collection passed them.
--
-- It is renamed so that a server of an earlier version still running, which
-- would not see revisions recorded by their entries alone, fails its writes
-- and watches instead of skipping those revisions.
ALTER TABLE IF EXISTS revisions RENAME TO revision_records;
