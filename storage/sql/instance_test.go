package sql

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pembadb/pemba/storage"
)

var uuidText = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func instanceID(t *testing.T, e *Engine) string {
	t.Helper()
	id, err := e.InstanceID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !uuidText.MatchString(id) {
		t.Fatalf("instance ID %q is not a random UUID", id)
	}
	return id
}

// TestInstanceID: the ID belongs to the database — every Engine on it, and
// a reopened one, reads the same — and another database has another.
func TestInstanceID(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	open := func(url string) *Engine {
		e, err := Open(ctx, Config{URL: url, AutoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	first := open(url)
	a := instanceID(t, first)
	if again := instanceID(t, first); again != a {
		t.Fatalf("second read %q, first %q", again, a)
	}
	second := open(url) // another server on the same database
	if b := instanceID(t, second); b != a {
		t.Fatalf("a second engine on the same database reads %q, the first %q", b, a)
	}
	first.Close()
	if _, err := first.InstanceID(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("InstanceID after Close: err = %v, want ErrClosed", err)
	}
	if b := instanceID(t, open(url)); b != a {
		t.Fatalf("reopened database reads %q, before %q", b, a)
	}
	if other := instanceID(t, open(pg.NewDatabase(t))); other == a {
		t.Fatalf("two databases share the instance ID %q", a)
	}
}

// TestMigrateToInstanceID upgrades a database at schema version 1, with
// history in it, to version 2: the history stays, the ID is drawn, and
// neither migrating again nor rerunning the step by hand changes it.
func TestMigrateToInstanceID(t *testing.T) {
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
	if len(ms) < 2 || ms[1].Name != "instance_id" {
		t.Fatalf("migration 0002 is %+v, want instance_id", ms[1])
	}
	if ran, err := applyPostgreSQL(ctx, pool, ms[0]); err != nil || !ran {
		t.Fatalf("apply 0001: ran %v, %v", ran, err)
	}
	// What a version-1 server left behind: three revisions written.
	if _, err := pool.Exec(ctx, "UPDATE revision_counter SET head = 3 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{URL: url}); !errors.Is(err, ErrNotMigrated) {
		t.Fatalf("open at version 1: err = %v, want ErrNotMigrated", err)
	}

	steps, err := Migrate(ctx, PostgreSQL, url)
	if err != nil || len(steps) != len(ms)-1 || steps[0] != (MigrationStep{2, "instance_id"}) {
		t.Fatalf("migrate from version 1 = %v, %v; want the steps from 0002_instance_id", steps, err)
	}
	e, err := Open(ctx, Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if head, err := e.HeadRevision(ctx); err != nil || head != 3 {
		t.Fatalf("head after migration = %d, %v; want 3", head, err)
	}
	id := instanceID(t, e)

	if steps, err := Migrate(ctx, PostgreSQL, url); err != nil || len(steps) != 0 {
		t.Fatalf("migrate again = %v, %v; want nothing to do", steps, err)
	}
	// An interrupted CockroachDB migration is completed by running its
	// statements again; they must keep the ID already drawn.
	for _, stmt := range splitStatements(ms[1].SQL) {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("rerun %q: %v", firstLine(stmt), err)
		}
	}
	var n int
	var stored string
	if err := pool.QueryRow(ctx, "SELECT count(*), max(instance_id) FROM datastore_instance").Scan(&n, &stored); err != nil {
		t.Fatal(err)
	}
	if n != 1 || stored != id {
		t.Fatalf("after rerunning 0002: %d rows, ID %q; want 1 row with %q", n, stored, id)
	}
}
