package sql

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pembadb/pemba/internal/pgtest"
)

// pg is the PostgreSQL server every test in this package shares; each test
// gets its own database.
var pg *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

// openTest opens a migrated engine on a fresh database.
func openTest(t testing.TB) *Engine {
	t.Helper()
	return openTestConfig(t, Config{})
}

// openTestConfig opens an engine with cfg on a fresh database.
func openTestConfig(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.URL, cfg.AutoMigrate, cfg.WatchPollInterval = pg.NewDatabase(t), true, 20*time.Millisecond
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// openCockroach opens a migrated CockroachDB engine with cfg on a fresh
// database of the cluster PEMBA_TEST_COCKROACH_URL names; without one it
// skips the test.
func openCockroach(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.URL, cfg.Dialect = pgtest.CockroachDatabase(t), CockroachDB
	cfg.AutoMigrate, cfg.WatchPollInterval = true, 20*time.Millisecond
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
