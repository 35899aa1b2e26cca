package sql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	for _, d := range []Dialect{PostgreSQL, CockroachDB} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if len(ms) == 0 {
			t.Fatalf("%s: no migrations", d)
		}
		for i, m := range ms {
			if m.Version != i+1 || m.SQL == "" {
				t.Fatalf("%s: migration %d is version %d (%q)", d, i, m.Version, m.Name)
			}
		}
	}
	pg, _ := migrations(PostgreSQL)
	crdb, _ := migrations(CockroachDB)
	if len(pg) != len(crdb) {
		t.Fatalf("postgres has %d migrations, cockroachdb %d: each step needs both", len(pg), len(crdb))
	}
	for i := range pg {
		if pg[i].Name != crdb[i].Name {
			t.Fatalf("migration %d is %q on postgres, %q on cockroachdb", i+1, pg[i].Name, crdb[i].Name)
		}
	}
}

// TestMigrateIdempotent applies the migrations, then again (nothing to
// do), then from four clients at once on a fresh database.
func TestMigrateIdempotent(t *testing.T) {
	ctx := context.Background()
	latest, err := LatestSchemaVersion(PostgreSQL)
	if err != nil {
		t.Fatal(err)
	}
	url := pg.NewDatabase(t)
	steps, err := Migrate(ctx, PostgreSQL, url)
	if err != nil || len(steps) != latest || steps[0].Version != 1 {
		t.Fatalf("first migrate = %v, %v; want %d steps from version 1", steps, err, latest)
	}
	steps, err = Migrate(ctx, PostgreSQL, url)
	if err != nil || len(steps) != 0 {
		t.Fatalf("second migrate = %v, %v; want nothing to do", steps, err)
	}
	if v := schemaVersion(t, url); v != latest {
		t.Fatalf("schema version %d, want %d", v, latest)
	}

	url = pg.NewDatabase(t)
	var wg sync.WaitGroup
	applied := make([]int, 4)
	for i := range applied {
		wg.Go(func() {
			steps, err := Migrate(ctx, PostgreSQL, url)
			if err != nil {
				t.Errorf("concurrent migrate: %v", err)
			}
			applied[i] = len(steps)
		})
	}
	wg.Wait()
	total := 0
	for _, n := range applied {
		total += n
	}
	if total != latest {
		t.Fatalf("concurrent migrations applied %v steps, want %d in all", applied, latest)
	}
}

func schemaVersion(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v int
	if err := conn.QueryRow(context.Background(), "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenChecksSchemaVersion: Open refuses an unmigrated database (and
// says how to fix it) and one migrated by a newer pemba; AutoMigrate fixes
// the first.
func TestOpenChecksSchemaVersion(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	_, err := Open(ctx, Config{URL: url})
	if !errors.Is(err, ErrNotMigrated) || !strings.Contains(err.Error(), "pemba migrate --datastore postgres") {
		t.Fatalf("open unmigrated: err = %v, want ErrNotMigrated naming `pemba migrate`", err)
	}
	e, err := Open(ctx, Config{URL: url, AutoMigrate: true})
	if err != nil {
		t.Fatalf("open with AutoMigrate: %v", err)
	}
	e.Close()
	e, err = Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatalf("open migrated: %v", err)
	}
	if _, err := e.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	e.Close()
	_, err = Open(ctx, Config{URL: url})
	if err == nil || !strings.Contains(err.Error(), "newer than this pemba") {
		t.Fatalf("open a newer schema: err = %v, want a refusal", err)
	}
}

func TestParseDialect(t *testing.T) {
	for in, want := range map[string]Dialect{
		"postgres": PostgreSQL, "postgresql": PostgreSQL,
		"cockroachdb": CockroachDB, "cockroach": CockroachDB, "crdb": CockroachDB,
	} {
		if got, err := ParseDialect(in); err != nil || got != want {
			t.Errorf("ParseDialect(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseDialect("mysql"); err == nil {
		t.Error("ParseDialect(mysql) succeeded")
	}
}

// TestMigrateToAuditLog upgrades a database at version 3 holding
// relationships, revisions and a schema: the history stays readable and
// watchable, the next write starts the audit chain (at the zero hash), its
// commit time continues from the newest revision's even when that one is
// ahead of the clock, and rerunning the step's statements changes
// nothing.
func TestMigrateToAuditLog(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ms, err := migrations(PostgreSQL)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 4 || ms[3].Name != "audit_log" {
		t.Fatalf("migration 0004 is %+v, want audit_log", ms[3])
	}
	for _, m := range ms[:3] {
		if ran, err := applyPostgreSQL(ctx, pool, m); err != nil || !ran {
			t.Fatalf("apply %04d: ran %v, %v", m.Version, ran, err)
		}
	}
	// What a version-3 server left behind: a schema at revision 1, a
	// relationship written at 2 and deleted at 3, another written at 3 —
	// by a server whose clock ran ahead.
	ahead := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	for _, stmt := range []string{
		"UPDATE revision_counter SET head = 3, schema_rev = 1 WHERE id = 1",
		`INSERT INTO revisions (revision, committed_at, actor, reason, schema_changed) VALUES
			(1, now() - interval '1 minute', 'admin', '', true), (2, now(), 'alice', 'grant', false), (3, '` + ahead.Format(time.RFC3339Nano) + `', 'bob', '', false)`,
		"INSERT INTO schemas (revision, source, compiled) VALUES (1, 'definition user {}', '')",
		`INSERT INTO relationships (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, caveat_name, created_rev, deleted_rev) VALUES
			('document', '1', 'viewer', 'user', 'alice', '', '', 2, 3), ('document', '1', 'viewer', 'user', 'bob', '', '', 3, NULL)`,
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	steps, err := Migrate(ctx, PostgreSQL, url)
	if err != nil || len(steps) != len(ms)-3 || steps[0] != (MigrationStep{4, "audit_log"}) {
		t.Fatalf("migrate from version 3 = %v, %v; want the steps from 0004_audit_log", steps, err)
	}
	e, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := ids(t, e, 3); fmt.Sprint(got) != "[1@bob]" {
		t.Fatalf("at revision 3: %v", got)
	}
	labels := []storage.Label{{Key: "ticket", Value: "SEC-9"}}
	rev, err := e.Write(ctx, storage.WriteRequest{SchemaRevision: 1, Metadata: storage.WriteMetadata{Actor: "carol", Labels: labels},
		Mutations: []storage.Mutation{{Op: storage.OpDelete, Relationship: rel("document", "1", "viewer", "user", "bob")}}})
	if err != nil || rev != 4 {
		t.Fatalf("first write after the migration = %d, %v; want revision 4", rev, err)
	}
	// History and the new write watch alike; only the new one has labels.
	var watched []string
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for ch, err := range e.Watch(wctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		watched = append(watched, fmt.Sprintf("%d %s %v %d", ch.Revision, ch.Metadata.Actor, ch.Metadata.Labels, len(ch.Relationships)))
		if ch.Revision == rev {
			break
		}
	}
	if want := "[1 admin [] 0 2 alice [] 1 3 bob [] 2 4 carol [{ticket SEC-9}] 1]"; fmt.Sprint(watched) != want {
		t.Fatalf("watched %v, want %s", watched, want)
	}
	res, err := auditlog.Verify(ctx, e)
	if err != nil || res.Broken != nil || res.Entries != 1 || res.First != rev {
		t.Fatalf("verify = %+v, %v; want one intact entry, revision %d", res, err, rev)
	}
	raw, _, err := e.AuditEntry(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := auditlog.Decode(raw.Value)
	if err != nil {
		t.Fatal(err)
	}
	if entry.PrevHash != (storage.AuditHash{}) || !entry.CommittedAt.Equal(ahead) || len(entry.Changes) != 1 {
		t.Fatalf("entry %+v: want the zero hash before it, committed at %v (revision 3's time), one change", entry, ahead)
	}
	// An interrupted CockroachDB migration is completed by running its
	// statements again; they must keep what writes have set since.
	var before, after []any
	readCounter := func() []any {
		var hash []byte
		var last time.Time
		if err := pool.QueryRow(ctx, "SELECT audit_hash, last_commit FROM revision_counter WHERE id = 1").Scan(&hash, &last); err != nil {
			t.Fatal(err)
		}
		return []any{hash, last}
	}
	// It reruns before any later migration has: 0008's rename is undone
	// for it, and done again after.
	before = readCounter()
	stmts := append([]string{"ALTER TABLE revision_records RENAME TO revisions"}, splitStatements(ms[3].SQL)...)
	for _, stmt := range append(stmts, "ALTER TABLE revisions RENAME TO revision_records") {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("rerun %q: %v", firstLine(stmt), err)
		}
	}
	after = readCounter()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("rerunning 0004 changed the counter row from %v to %v", before, after)
	}
	if res, err := auditlog.Verify(ctx, e); err != nil || res.Broken != nil || res.Entries != 1 {
		t.Fatalf("verify after rerunning 0004 = %+v, %v", res, err)
	}
}

// TestMigrateToAuditHead: migration 0007 moves the audit chain's head off
// the revision counter's row. The first write after it chains to the
// newest entry a version-6 server wrote or, when a trim had removed every
// entry, to the head the counter kept; a version-6 server still running
// can no longer write, so it cannot break the chain.
func TestMigrateToAuditHead(t *testing.T) {
	ctx := context.Background()
	for _, trimmed := range []bool{false, true} {
		t.Run(fmt.Sprintf("trimmed=%v", trimmed), func(t *testing.T) {
			url, pool := databaseBefore(t, 7, "audit_head")
			// What a version-6 server left: two revisions with chained
			// entries, the head on the counter's row — or, trimmed, the
			// head alone.
			var head storage.AuditHash
			at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
			for rev := int64(1); rev <= 2; rev++ {
				en := storage.AuditEntry{Revision: storage.Revision(rev), CommittedAt: at, Kind: storage.AuditWrite, PrevHash: head,
					Metadata: storage.WriteMetadata{Actor: "v6"},
					Changes:  []storage.AuditChange{{Op: storage.OpTouch, Relationship: rel("document", fmt.Sprint(rev), "viewer", "user", "alice")}}}
				value, err := auditlog.Seal(&en)
				if err != nil {
					t.Fatal(err)
				}
				head = en.Hash
				if _, err := pool.Exec(ctx, "INSERT INTO revisions (revision, committed_at, actor, reason, schema_changed) VALUES ($1, $2, 'v6', '', false)", rev, at); err != nil {
					t.Fatal(err)
				}
				if !trimmed {
					if _, err := pool.Exec(ctx, "INSERT INTO audit_entries (revision, committed_at, value) VALUES ($1, $2, $3)", rev, at, value); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := pool.Exec(ctx, "UPDATE revision_counter SET head = 2, audit_hash = $1, last_commit = $2 WHERE id = 1", head[:], at); err != nil {
				t.Fatal(err)
			}
			e := openMigrated(t, url)
			rev, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel("document", "3", "viewer", "user", "alice")}}})
			if err != nil || rev != 3 {
				t.Fatalf("first write after the migration = %d, %v; want revision 3", rev, err)
			}
			raw, _, err := e.AuditEntry(ctx, rev)
			if err != nil {
				t.Fatal(err)
			}
			en, err := auditlog.Decode(raw.Value)
			if err != nil || en.PrevHash != head {
				t.Fatalf("the new entry chains to %x (%v), want the version-6 head %x", en.PrevHash, err, head)
			}
			if res, err := auditlog.Verify(ctx, e); err != nil || res.Broken != nil {
				t.Fatalf("verify = %+v, %v", res, err)
			}
			// A version-6 server's write ends by setting the head on the
			// counter's row: refused.
			if _, err := pool.Exec(ctx, "UPDATE revision_counter SET audit_hash = $1 WHERE id = 1", head[:]); err == nil || !strings.Contains(err.Error(), "revision_counter_audit_hash_unused") {
				t.Fatalf("a version-6 write's head update: %v, want the check constraint's violation", err)
			}
		})
	}
}

// TestMigrateToRevisionRecords: migration 0008 renames the revisions table
// to revision_records, since a revision's audit entry is now its only
// record. Revisions a version-7 server recorded both ways, and those
// written after, watch alike; a version-7 server still running can
// neither write nor watch, rather than skip revisions it cannot see.
func TestMigrateToRevisionRecords(t *testing.T) {
	ctx := context.Background()
	url, pool := databaseBefore(t, 8, "revision_records")
	// What a version-7 server left: a revision with its record and its
	// entry, and the relationship it wrote.
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	en := storage.AuditEntry{Revision: 1, CommittedAt: at, Kind: storage.AuditWrite, Metadata: storage.WriteMetadata{Actor: "v7"},
		Changes: []storage.AuditChange{{Op: storage.OpTouch, Relationship: rel("document", "1", "viewer", "user", "alice")}}}
	value, err := auditlog.Seal(&en)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO revisions (revision, committed_at, actor, reason, schema_changed) VALUES (1, $1, 'v7', 'granted', false)", []any{at}},
		{"INSERT INTO audit_entries (revision, committed_at, value) VALUES (1, $1, $2)", []any{at, value}},
		{`INSERT INTO relationships (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, caveat_name, created_rev)
			VALUES ('document', '1', 'viewer', 'user', 'alice', '', '', 1)`, nil},
		{"UPDATE revision_counter SET head = 1, last_commit = $1 WHERE id = 1", []any{at}},
	} {
		if _, err := pool.Exec(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatalf("%s: %v", stmt.sql, err)
		}
	}
	e := openMigrated(t, url)
	rev, err := e.Write(ctx, storage.WriteRequest{Metadata: storage.WriteMetadata{Actor: "v8", Labels: []storage.Label{{Key: "ticket", Value: "SEC-8"}}},
		Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel("document", "2", "viewer", "user", "bob")}}})
	if err != nil || rev != 2 {
		t.Fatalf("first write after the migration = %d, %v; want revision 2", rev, err)
	}
	var watched []string
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for ch, err := range e.Watch(wctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		watched = append(watched, fmt.Sprintf("%d %s %q %v %d", ch.Revision, ch.Metadata.Actor, ch.Metadata.Reason, ch.Metadata.Labels, len(ch.Relationships)))
		if ch.Revision == rev {
			break
		}
	}
	if want := `[1 v7 "granted" [] 1 2 v8 "" [{ticket SEC-8}] 1]`; fmt.Sprint(watched) != want {
		t.Fatalf("watched %v, want %s", watched, want)
	}
	var records int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM revision_records").Scan(&records); err != nil || records != 1 {
		t.Fatalf("revision records = %d, %v; want 1 (the new revision's entry is its record)", records, err)
	}
	for _, stmt := range []string{
		"INSERT INTO revisions (revision, committed_at, actor, reason, schema_changed) VALUES (3, now(), 'v7', '', false)",
		"SELECT revision FROM revisions WHERE revision > 0",
	} {
		if _, err := pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "42P01") {
			t.Fatalf("a version-7 server's %q: %v, want undefined table", stmt, err)
		}
	}
}

// databaseBefore returns a fresh database holding the migrations before
// version, which must be the one called name, and a pool on it (closed
// with the test).
func databaseBefore(t *testing.T, version int, name string) (string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	ms, err := migrations(PostgreSQL)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < version || ms[version-1].Name != name {
		t.Fatalf("migration %04d is %+v, want %s", version, ms[min(version, len(ms))-1], name)
	}
	url := pg.NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, m := range ms[:version-1] {
		if ran, err := applyPostgreSQL(ctx, pool, m); err != nil || !ran {
			t.Fatalf("apply %04d: ran %v, %v", m.Version, ran, err)
		}
	}
	return url, pool
}

// openMigrated migrates the database at url to the newest version and
// opens an engine on it (closed with the test).
func openMigrated(t *testing.T, url string) *Engine {
	t.Helper()
	ctx := context.Background()
	if _, err := Migrate(ctx, PostgreSQL, url); err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
