-- The datastore's identity: a random ID drawn once, when this migration
-- first runs, and never changed. The server binds zookies to it, so a
-- zookie minted against another database is refused rather than read as a
-- revision of this one. A copy of the database (backup, replica) keeps it.

CREATE TABLE IF NOT EXISTS datastore_instance (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    instance_id TEXT NOT NULL
);

-- gen_random_uuid() is built in from PostgreSQL 13. Running this again
-- keeps the first ID.
INSERT INTO datastore_instance (id, instance_id) VALUES (1, gen_random_uuid()::TEXT) ON CONFLICT (id) DO NOTHING;
