package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotInstalled means no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")

// binGlob is where Debian and Ubuntu install PostgreSQL server binaries, one
// directory per major version.
const binGlob = "/usr/lib/postgresql/*/bin"

// Server is a running throwaway PostgreSQL. Its methods are safe for
// concurrent use (parallel tests may create databases at once).
type Server struct {
	dir     string // temporary directory: data/, the unix socket, the log
	port    int
	version string // major version, e.g. "15"
	proc    *exec.Cmd
	exited  chan struct{} // closed when proc has exited
	admin   *pgxpool.Pool // connected to the "postgres" database
	nextDB  atomic.Int64  // suffix that makes database names unique
	stopped atomic.Bool
}

// Start initializes and starts a server. It returns an error wrapping
// ErrNotInstalled when no PostgreSQL binaries are installed.
func Start() (*Server, error) {
	binDir, version, err := findBinaries(binGlob)
	if err != nil {
		return nil, err
	}
	// As root the server runs as `postgres`, who must be able to reach
	// the directory: $TMPDIR may be private to root, /tmp never is. /tmp
	// also keeps the unix socket path under its 107-byte limit.
	base := ""
	if os.Geteuid() == 0 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pemba-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	cred, err := serverCredential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s := &Server{dir: dir, version: version}
	if err := s.initdb(binDir, cred); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A free port can be taken between probing and binding; try a few.
	for attempt := 0; ; attempt++ {
		err = s.launch(binDir, cred)
		if err == nil || attempt == 3 {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// findBinaries returns the bin directory of the newest installed major
// version.
func findBinaries(glob string) (dir, version string, err error) {
	dirs, _ := filepath.Glob(glob)
	type candidate struct {
		dir   string
		major int
	}
	var found []candidate
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		major, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		found = append(found, candidate{d, major})
	}
	if len(found) == 0 {
		return "", "", ErrNotInstalled
	}
	sort.Slice(found, func(i, j int) bool { return found[i].major > found[j].major })
	return found[0].dir, strconv.Itoa(found[0].major), nil
}

// serverCredential returns the credential the server runs with: nil (the
// current user) unless we are root, in which case the `postgres` user, who
// is given the temporary directory.
func serverCredential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) command(binDir, name string, cred *syscall.Credential, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

func (s *Server) initdb(binDir string, cred *syscall.Credential) error {
	cmd := s.command(binDir, "initdb", cred,
		"-D", filepath.Join(s.dir, "data"), "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// launch runs postgres as a child of this process on a free port and waits
// until it accepts connections. The child gets SIGKILL if this process
// dies, so a crashed test binary leaves no server behind.
func (s *Server) launch(binDir string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.port = port
	cmd := s.command(binDir, "postgres", cred,
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(port),
		"-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=64MB", // several test binaries run servers at once
	)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.proc, s.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.exited) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		pool, err := pgxpool.New(ctx, s.URL("postgres"))
		if err == nil {
			if err = pool.Ping(ctx); err == nil {
				s.admin = pool
				return nil
			}
			pool.Close()
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited during startup:\n%s", log.String())
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Version is the server's major version, e.g. "15".
func (s *Server) Version() string { return s.version }

// URL is a connection URL for database db on this server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates an empty database for t, drops it when t ends, and
// returns its connection URL. On a nil Server (PostgreSQL not installed) it
// skips t, or fails it when CI=true.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	if s == nil {
		missing(t)
	}
	name := unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t%d_%s", s.nextDB.Add(1), name)
	ctx := context.Background()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if s.stopped.Load() {
			return
		}
		_, err := s.admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.URL(name)
}

// missing skips t, or fails it under CI, because PostgreSQL is absent.
func missing(t testing.TB) {
	t.Helper()
	if RequiredByEnvironment() {
		t.Fatalf("%v; CI=true requires PostgreSQL (install the postgresql package)", ErrNotInstalled)
	}
	t.Skip(ErrNotInstalled)
}

// RequiredByEnvironment reports whether a missing PostgreSQL is a failure
// rather than a reason to skip: true when the environment has CI=true.
func RequiredByEnvironment() bool {
	return strings.EqualFold(os.Getenv("CI"), "true")
}

// Stop shuts the server down and removes its directory. It is safe to call
// more than once.
func (s *Server) Stop() error {
	if s == nil || s.stopped.Swap(true) {
		return nil
	}
	if s.admin != nil {
		s.admin.Close()
	}
	// SIGINT is PostgreSQL's "fast shutdown": roll back sessions, exit.
	_ = s.proc.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.kill()
	}
	return os.RemoveAll(s.dir)
}

func (s *Server) kill() {
	_ = s.proc.Process.Kill()
	<-s.exited
}

// Main starts a server, stores it in *srv, runs m's tests and stops the
// server, returning the exit code for os.Exit. When PostgreSQL is not
// installed it leaves *srv nil and runs the tests anyway (NewDatabase then
// skips), unless CI=true, where it fails without running them.
func Main(m *testing.M, srv **Server) int {
	s, err := Start()
	switch {
	case errors.Is(err, ErrNotInstalled) && !RequiredByEnvironment():
		*srv = nil
	case err != nil:
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if errors.Is(err, ErrNotInstalled) {
			fmt.Fprintln(os.Stderr, "pgtest: CI=true requires PostgreSQL (install the postgresql package)")
		}
		return 1
	default:
		*srv = s
	}
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: stop:", err)
	}
	return code
}
