// Package pgtest runs a throwaway PostgreSQL server for tests.
//
// It starts the newest server found under /usr/lib/postgresql/*/bin in a
// temporary directory, listening on a free loopback port (and on a unix
// socket inside that directory), with fsync off: data is disposable. When
// the test process runs as root the server runs as the `postgres` user,
// because initdb and postgres refuse to run as root.
//
// One server serves a whole test binary; each test gets its own database:
//
//	var pg *pgtest.Server
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
//
//	func TestSomething(t *testing.T) {
//		url := pg.NewDatabase(t) // dropped when the test ends
//		...
//	}
//
// When PostgreSQL is not installed, NewDatabase skips the test — except when
// the environment has CI=true, where a missing PostgreSQL fails the run:
// continuous integration must never pass by skipping the database tests.
//
// CockroachDatabase does the same on a CockroachDB cluster the tests do
// not start: the one the PEMBA_TEST_COCKROACH_URL environment variable
// names. Without it those tests skip, under CI=true too, since no
// CockroachDB is installed by default.
package pgtest
