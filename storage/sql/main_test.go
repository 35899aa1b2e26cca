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
	e, err := Open(context.Background(), Config{
		URL:               pg.NewDatabase(t),
		AutoMigrate:       true,
		WatchPollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
