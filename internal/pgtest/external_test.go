package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestExternalDatabases runs External against the throwaway PostgreSQL
// (a CockroachDB cluster is not installed here): each test gets an empty
// database of its own, dropped when the test ends.
func TestExternalDatabases(t *testing.T) {
	if pg == nil {
		missing(t)
	}
	ext, err := connectExternal(pg.URL("postgres"), "DROP DATABASE %s WITH (FORCE)")
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		first = ext.NewDatabase(t)
		if _, err := connect(t, first).Exec(ctx, "CREATE TABLE marker (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		second := ext.NewDatabase(t)
		if second == first {
			t.Fatalf("two tests got the same database %s", second)
		}
		var n int
		if err := connect(t, second).QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("new database is not empty: n=%d err=%v", n, err)
		}
	})
	cfg, err := pgx.ParseConfig(first)
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	err = pg.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", cfg.Database).Scan(&exists)
	if err != nil || exists {
		t.Fatalf("database %s still exists after its test (err=%v)", cfg.Database, err)
	}
}

// TestCockroachSkipsWithoutURL: without PEMBA_TEST_COCKROACH_URL the
// CockroachDB tests skip, under CI=true too.
func TestCockroachSkipsWithoutURL(t *testing.T) {
	t.Setenv(CockroachURLEnv, "")
	t.Setenv("CI", "true")
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		CockroachDatabase(rec)
	}()
	<-done
	if !rec.skipped || rec.failed {
		t.Errorf("skipped=%v failed=%v, want a skip", rec.skipped, rec.failed)
	}
}

func TestConnectExternalRefusesDSN(t *testing.T) {
	if _, err := connectExternal("host=localhost port=26257", "%s"); err == nil {
		t.Fatal("a key=value DSN was accepted; the database cannot be swapped in one")
	}
}
