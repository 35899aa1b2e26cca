package sql

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
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
