package pgtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
)

var pg *Server

func TestMain(m *testing.M) { os.Exit(Main(m, &pg)) }

// TestNewDatabase checks that each test gets a usable, empty and separate
// database, and that it is dropped afterwards.
func TestNewDatabase(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		first = pg.NewDatabase(t)
		conn := connect(t, first)
		if _, err := conn.Exec(ctx, "CREATE TABLE marker (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("second", func(t *testing.T) {
		second := pg.NewDatabase(t)
		if second == first {
			t.Fatalf("two tests got the same database %s", second)
		}
		conn := connect(t, second)
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'marker'").Scan(&n)
		if err != nil || n != 0 {
			t.Fatalf("new database is not empty: n=%d err=%v", n, err)
		}
	})
	// The first subtest's cleanup has dropped its database.
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

// TestServerSettings checks the server is the newest installed version and
// runs with fsync off on loopback.
func TestServerSettings(t *testing.T) {
	conn := connect(t, pg.NewDatabase(t))
	ctx := context.Background()
	var fsync, version, addr string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %q, want off", fsync)
	}
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')").Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version[:len(pg.Version())] != pg.Version() {
		t.Errorf("server_version_num %s is not major version %s", version, pg.Version())
	}
	if err := conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", addr)
	}
}

func TestFindBinariesNewest(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "13", "15"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if v == "15" {
			continue // incomplete install: no binaries
		}
		for _, name := range []string{"postgres", "initdb"} {
			if err := os.WriteFile(filepath.Join(bin, name), nil, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir, version, err := findBinaries(filepath.Join(root, "*", "bin"))
	if err != nil || version != "13" || dir != filepath.Join(root, "13", "bin") {
		t.Fatalf("findBinaries = %q, %q, %v; want version 13", dir, version, err)
	}
	if _, _, err := findBinaries(filepath.Join(t.TempDir(), "*", "bin")); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("findBinaries on an empty tree: err = %v, want ErrNotInstalled", err)
	}
}

// TestMissingServer checks the skip-or-fail rule on a nil Server.
func TestMissingServer(t *testing.T) {
	for _, tc := range []struct {
		ci         string
		wantSkip   bool
		wantFailed bool
	}{
		{ci: "", wantSkip: true},
		{ci: "false", wantSkip: true},
		{ci: "true", wantFailed: true},
		{ci: "TRUE", wantFailed: true},
	} {
		t.Setenv("CI", tc.ci)
		rec := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var none *Server
			none.NewDatabase(rec)
		}()
		<-done
		if rec.skipped != tc.wantSkip || rec.failed != tc.wantFailed {
			t.Errorf("CI=%q: skipped=%v failed=%v, want skipped=%v failed=%v",
				tc.ci, rec.skipped, rec.failed, tc.wantSkip, tc.wantFailed)
		}
	}
}

// recorder captures Skip and Fatal without ending the enclosing test; both
// end the calling goroutine like the real ones do.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(...any)           { r.skipped = true; runtime.Goexit() }
func (r *recorder) Skipf(string, ...any)  { r.skipped = true; runtime.Goexit() }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
