package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/pgtest"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// pemba is the binary under test, built once by TestMain.
var pemba string

// pg is a throwaway PostgreSQL (nil when it is not installed).
var pg *pgtest.Server

// testToken is the token every test server accepts, as name=secret.
const (
	tokenName   = "tester"
	tokenSecret = "e2e-secret-token"
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "pemba-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pemba = filepath.Join(dir, "pemba")
	args := []string{"build", "-o", pemba}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool(), append(args, "github.com/pembadb/pemba/cmd/pemba")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build pemba:", err)
		os.Exit(1)
	}
	code := pgtest.Main(m, &pg)
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command: the one on PATH, else the toolchain that
// built this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running `pemba serve`.
type server struct {
	t        testing.TB
	args     []string
	dir      string // working directory
	grpcAddr string
	httpAddr string
	cmd      *exec.Cmd
	log      *syncBuffer
	exited   chan struct{}
	exitErr  error
	// relaunches counts the launches waitReady repeated because a port
	// was taken.
	relaunches int
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// datastoreArgs are the serve flags for a datastore kind; "embedded" uses
// a fresh directory of t's.
func datastoreArgs(t testing.TB, kind string) []string {
	t.Helper()
	switch kind {
	case "memory":
		return []string{"--datastore", "memory"}
	case "embedded":
		return []string{"--datastore", "embedded", "--data-dir", filepath.Join(t.TempDir(), "data")}
	case "postgres":
		url := pg.NewDatabase(t) // skips without PostgreSQL, fails under CI
		return []string{"--datastore", "postgres", "--datastore-url", url, "--auto-migrate"}
	}
	t.Fatalf("unknown datastore %q", kind)
	return nil
}

// startServer starts pemba serve with the test token and extra flags and
// waits until it is ready.
func startServer(t testing.TB, extra ...string) *server {
	t.Helper()
	s := &server{t: t, args: extra, dir: t.TempDir()}
	s.start()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitReady()
}

// launch starts the process without waiting for it to be ready.
func (s *server) launch() {
	t := s.t
	t.Helper()
	s.grpcAddr, s.httpAddr = freeAddr(t), freeAddr(t)
	args := append([]string{"serve", "--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr,
		"--token", tokenName + "=" + tokenSecret, "--log-level", "debug"}, s.args...)
	s.cmd = exec.Command(pemba, args...)
	s.cmd.Dir = s.dir // a default ./pemba-data lands here, never in the source tree
	s.log = &syncBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.exited = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
}

// waitReady waits until the launched process answers /readyz.
func (s *server) waitReady() {
	t := s.t
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.httpClient().Get(s.httpURL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-s.exited:
			// freeAddr closes the port it found before serve binds it, and
			// another process (a parallel test package) may take it in
			// between: launch again on other ports.
			if s.relaunches < 3 && strings.Contains(s.log.String(), "address already in use") {
				s.relaunches++
				s.launch()
				deadline = time.Now().Add(20 * time.Second)
				continue
			}
			t.Fatalf("pemba serve exited before it was ready: %v\n%s", s.exitErr, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pemba serve not ready after 20s:\n%s", s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// usesTLS reports whether the server was started with a certificate.
func (s *server) usesTLS() bool { return slices.Contains(s.args, "--tls-cert") }

func (s *server) httpURL() string {
	if s.usesTLS() {
		return "https://" + s.httpAddr
	}
	return "http://" + s.httpAddr
}

// httpClient trusts the test server's self-signed certificate.
func (s *server) httpClient() *http.Client {
	if !s.usesTLS() {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// stop sends SIGTERM and waits for the process to exit.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.exitErr
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("pemba serve did not stop within 30s of SIGTERM:\n%s", s.log)
	}
	return s.exitErr
}

// kill9 kills the server with SIGKILL.
func (s *server) kill9() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// restart starts the same server again (same flags and data directory).
func (s *server) restart() { s.start() }

// logged reports whether the server's log holds text, waiting up to five
// seconds for it: the log is copied from the process's output by a pipe,
// so a line written before /readyz answered may arrive after.
func (s *server) logged(text string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if strings.Contains(s.log.String(), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// cliResult is one run of the CLI.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the pemba CLI against the server with the test token.
func (s *server) cli(stdin string, args ...string) cliResult {
	s.t.Helper()
	return runCLI(s.t, []string{"PEMBA_ENDPOINT=" + s.grpcAddr, "PEMBA_TOKEN=" + tokenSecret}, stdin, args...)
}

func runCLI(t testing.TB, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	return runCLIIn(t, "", env, stdin, args...)
}

// runCLIIn runs the CLI in directory dir ("" for the current one).
func runCLIIn(t testing.TB, dir string, env []string, stdin string, args ...string) cliResult {
	t.Helper()
	// A command that should exit but serves instead must not hang the suite.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pemba, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run pemba %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// client is a gRPC client of the server, authenticated with the test token.
type client struct {
	schema pb.SchemaServiceClient
	rels   pb.RelationshipServiceClient
	perms  pb.PermissionServiceClient
	watch  pb.WatchServiceClient
	audit  pb.AuditServiceClient
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

func (s *server) client(token string) *client {
	s.t.Helper()
	cc, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cc.Close() })
	return &client{
		schema: pb.NewSchemaServiceClient(cc), rels: pb.NewRelationshipServiceClient(cc),
		perms: pb.NewPermissionServiceClient(cc), watch: pb.NewWatchServiceClient(cc),
		audit: pb.NewAuditServiceClient(cc),
	}
}

// httpDo sends an HTTP/JSON request with the test token.
func (s *server) httpDo(method, path, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.httpURL()+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tokenSecret)
	resp, err := s.httpClient().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Zookies and cursors change between runs and datastores; golden output
// masks them.
var (
	zookieLine = regexp.MustCompile(`(?m)^((?:stderr: )?[a-z ]+ at: )[A-Za-z0-9_-]+$`)
	tokenField = regexp.MustCompile(`"(token|cursor)":"[A-Za-z0-9_-]*"`)
	timeField  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	resumeLine = regexp.MustCompile(`--cursor [A-Za-z0-9_-]+`)
	// The name and ID patterns belong to package graph; their exact text
	// is not this test's business.
	pattern = regexp.MustCompile(`must match \S+`)
)

func mask(s string) string {
	s = zookieLine.ReplaceAllString(s, "${1}<zookie>")
	s = tokenField.ReplaceAllString(s, `"$1":"<$1>"`)
	s = resumeLine.ReplaceAllString(s, "--cursor <cursor>")
	s = pattern.ReplaceAllString(s, "must match <pattern>")
	return s
}

// lastZookie finds the last zookie a CLI run printed on stderr.
var zookieOnStderr = regexp.MustCompile(`(?m)^[a-z ]+ at: ([A-Za-z0-9_-]+)$`)

func lastZookie(stderr string) string {
	m := zookieOnStderr.FindAllStringSubmatch(stderr, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// relationshipFromWire converts a wire relationship for comparisons.
func relationshipFromWire(r *pb.Relationship) graph.Relationship {
	out := graph.Relationship{
		Resource: graph.ObjectRef{Type: r.GetResource().GetType(), ID: r.GetResource().GetId()},
		Relation: r.GetRelation(),
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: r.GetSubject().GetObject().GetType(), ID: r.GetSubject().GetObject().GetId()},
			Relation: r.GetSubject().GetRelation()},
	}
	if c := r.GetCaveat(); c != nil {
		out.Caveat = &graph.Caveat{Name: c.GetName(), Context: c.GetContext().AsMap()}
	}
	if e := r.GetExpiration(); e != nil {
		t := e.AsTime()
		out.Expiration = &t
	}
	return out
}
