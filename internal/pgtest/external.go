package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CockroachURLEnv names the environment variable that points the
// CockroachDB tests at a running cluster: a connection URL whose user may
// create databases, e.g.
// postgresql://root@127.0.0.1:26257/defaultdb?sslmode=disable (what
// `cockroach start-single-node --insecure` listens on).
const CockroachURLEnv = "PEMBA_TEST_COCKROACH_URL"

// External is a database server the tests did not start, reached by URL.
// Each test gets a database of its own on it, named after the test and
// this process, so test binaries sharing the server never meet. Its
// methods are safe for concurrent use.
type External struct {
	base *url.URL
	// dropSQL is the statement that drops a database, with %s for its
	// quoted name.
	dropSQL string
	admin   *pgxpool.Pool
	nextDB  atomic.Int64
}

// cockroach is the cluster CockroachURLEnv names, connected to once per
// process.
var cockroach struct {
	once sync.Once
	ext  *External
	err  error
}

// CockroachDatabase creates an empty database for t on the CockroachDB
// cluster CockroachURLEnv names, drops it when t ends, and returns its
// URL. When the variable is unset it skips t — under CI=true too, since
// no CockroachDB is installed there: set the variable to run them.
func CockroachDatabase(t testing.TB) string {
	t.Helper()
	SkipUnlessCockroach(t)
	raw := os.Getenv(CockroachURLEnv)
	cockroach.once.Do(func() {
		cockroach.ext, cockroach.err = connectExternal(raw, "DROP DATABASE IF EXISTS %s CASCADE")
	})
	if cockroach.err != nil {
		t.Fatalf("%s: %v", CockroachURLEnv, cockroach.err)
	}
	return cockroach.ext.NewDatabase(t)
}

// SkipUnlessCockroach skips t when CockroachURLEnv is unset, so a suite
// of CockroachDB subtests skips once rather than in every subtest.
func SkipUnlessCockroach(t testing.TB) {
	t.Helper()
	if os.Getenv(CockroachURLEnv) == "" {
		t.Skipf("%s is not set: no CockroachDB cluster to test against (see README, PostgreSQL and CockroachDB)", CockroachURLEnv)
	}
}

// connectExternal connects to the server at rawURL, which drops a
// database with dropSQL.
func connectExternal(rawURL, dropSQL string) (*External, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("want a postgresql:// URL, got %q", rawURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgxpool.New(ctx, rawURL)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	return &External{base: u, dropSQL: dropSQL, admin: admin}, nil
}

// NewDatabase creates an empty database for t, drops it when t ends, and
// returns its connection URL (the server's URL with the database
// replaced).
func (e *External) NewDatabase(t testing.TB) string {
	t.Helper()
	name := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 30 {
		name = name[:30]
	}
	name = fmt.Sprintf("pemba_test_%d_%d_%s", os.Getpid(), e.nextDB.Add(1), name)
	quoted := pgx.Identifier{name}.Sanitize()
	ctx := context.Background()
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+quoted); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := e.admin.Exec(ctx, fmt.Sprintf(e.dropSQL, quoted)); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u := *e.base
	u.Path = "/" + name
	return u.String()
}

// Close closes the connection to the server.
func (e *External) Close() { e.admin.Close() }
