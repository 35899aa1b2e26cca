-- Pemba's revisioned relationship store, CockroachDB dialect.
--
-- Every write transaction first increments revision_counter.head; the row
-- lock serializes writers, so commit order equals revision order and a
-- rolled-back write leaves no gap. A relationship version is visible at
-- revision R when created_rev <= R AND (deleted_rev IS NULL OR deleted_rev > R).

CREATE TABLE IF NOT EXISTS revision_counter (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    head     BIGINT NOT NULL,  -- newest committed revision
    gc_floor BIGINT NOT NULL   -- oldest revision still readable
);

INSERT INTO revision_counter (id, head, gc_floor) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS revisions (
    revision       BIGINT PRIMARY KEY,
    committed_at   TIMESTAMPTZ NOT NULL,
    actor          STRING NOT NULL,
    reason         STRING NOT NULL,
    schema_changed BOOLEAN NOT NULL
);

-- Garbage collection finds the revision in force at the start of its window.
CREATE INDEX IF NOT EXISTS revisions_committed_at ON revisions (committed_at);

-- Uncollated STRING compares bytewise, so results are ordered as
-- storage.Reader documents.
CREATE TABLE IF NOT EXISTS relationships (
    resource_type    STRING NOT NULL,
    resource_id      STRING NOT NULL,
    relation         STRING NOT NULL,
    subject_type     STRING NOT NULL,
    subject_id       STRING NOT NULL,
    subject_relation STRING NOT NULL,  -- '' is the ellipsis
    caveat_name      STRING NOT NULL,  -- '' when uncaveated
    caveat_context   JSONB,
    expires_at       BIGINT,           -- Unix nanoseconds; NULL never expires
    created_rev      BIGINT NOT NULL,
    deleted_rev      BIGINT,
    -- The forward index: (resource type, id, relation, subject...) then the
    -- version, which the snapshot predicate checks.
    PRIMARY KEY (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, created_rev)
);

-- At most one live version of each relationship; CREATE and TOUCH rely on it.
CREATE UNIQUE INDEX IF NOT EXISTS relationships_live
    ON relationships (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
    WHERE deleted_rev IS NULL;

-- The reverse index: by subject, then resource, carrying the columns the
-- snapshot and expiration predicates read.
CREATE INDEX IF NOT EXISTS relationships_reverse
    ON relationships (subject_type, subject_id, subject_relation, resource_type, resource_id, relation, created_rev)
    STORING (deleted_rev, expires_at);

-- Watch reads one revision's changes; garbage collection finds dead and
-- long-expired versions.
CREATE INDEX IF NOT EXISTS relationships_created ON relationships (created_rev);
CREATE INDEX IF NOT EXISTS relationships_deleted ON relationships (deleted_rev) WHERE deleted_rev IS NOT NULL;
CREATE INDEX IF NOT EXISTS relationships_expiring ON relationships (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS schemas (
    revision BIGINT PRIMARY KEY,
    source   STRING NOT NULL,
    compiled BYTES NOT NULL
);
