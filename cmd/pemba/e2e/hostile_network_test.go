package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/internal/pgtest"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// These tests play a hostile or unlucky client against the real binary:
// oversized bodies without a token, floods of idle connections, trickled
// bodies, flag combinations that would disable authentication, profile
// endpoints, a database that goes away and a full disk.

// spaces is a request body of n spaces, produced as it is read.
type spaces struct{ left int64 }

func (s *spaces) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), s.left))
	for i := range p[:n] {
		p[i] = ' '
	}
	s.left -= int64(n)
	return n, nil
}

// procStatusKB reads a field (VmRSS, VmHWM) of /proc/pid/status in KiB.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return kb
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// postLarge POSTs a body of size spaces to path with token ("" for none).
func postLarge(t *testing.T, s *server, path, token string, size int64) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.httpURL()+path, &spaces{left: size})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHostileLargePost: a 50 MB POST without a token is refused with 401
// before the server buffers it, and one with a token is 413 naming the
// limit; the server's peak memory does not grow by the body's size.
func TestHostileLargePost(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	pid := s.cmd.Process.Pid
	before := procStatusKB(t, pid, "VmRSS")
	const size = 50 << 20
	for _, token := range []string{"", "not-the-token"} {
		if code, body := postLarge(t, s, "/v1/relationships/write", token, size); code != http.StatusUnauthorized {
			t.Errorf("token %q: %d %.200s; want 401", token, code, body)
		}
	}
	code, body := postLarge(t, s, "/v1/relationships/write", tokenSecret, size)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "--max-message-bytes") {
		t.Errorf("with the token: %d %.200s; want 413 naming --max-message-bytes", code, body)
	}
	// A buffered body costs its size at least once (the old gateway
	// held several copies); 32 MiB of headroom is well below 50 MB.
	if peak := procStatusKB(t, pid, "VmHWM"); peak-before > 32<<10 {
		t.Errorf("server peak RSS grew from %d KiB to %d KiB during 50 MB POSTs", before, peak)
	}
}

// startWithFileLimit starts a server whose open-file limit (soft and
// hard) is nofile, through a shell that sets it and execs the binary.
// The tests of this package run one at a time, so swapping the binary
// path for the duration of startServer is safe.
func startWithFileLimit(t *testing.T, nofile int, extra ...string) *server {
	t.Helper()
	script := filepath.Join(t.TempDir(), "pemba-limited")
	text := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 1\nexec %q \"$@\"\n", nofile, pemba)
	if err := os.WriteFile(script, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	real := pemba
	pemba = script
	defer func() { pemba = real }()
	return startServer(t, extra...)
}

// dialIdle opens n TCP connections to addr that never send a byte.
func dialIdle(t *testing.T, addr string, n int) {
	t.Helper()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection %d to %s: %v", i, addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// TestHostileIdleConnections: more silent TCP connections (no HTTP/2
// preface) to the gRPC port than the server's open-file limit (2048)
// neither take /readyz down nor keep gRPC from answering: each listener
// holds a bounded number of connections, and silent ones are dropped
// after the handshake timeout. (Unbounded, they took every descriptor
// for gRPC's default two-minute handshake timeout.)
func TestHostileIdleConnections(t *testing.T) {
	s := startWithFileLimit(t, 2048, "--datastore", "memory", "--handshake-timeout", "2s")
	c := setup(t, s)
	dialIdle(t, s.grpcAddr, 2500)
	dialIdle(t, s.httpAddr, 200)

	// The server accepts the flood over the next moments; /readyz must
	// keep answering throughout (it used to fail from the moment the
	// descriptors ran out until the silent connections timed out).
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 10 {
		resp, err := client.Get(s.httpURL() + "/readyz")
		if err != nil {
			t.Fatalf("/readyz %d under 2700 idle connections: %v\n%s", i, err, s.log)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz %d under 2700 idle connections: %d", i, resp.StatusCode)
		}
		time.Sleep(time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	fresh := s.client(tokenSecret) // a new connection, queued behind the idle ones
	if _, err := fresh.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("gRPC under 2700 idle connections: %v\n%s", err, s.log)
	}
	if _, err := c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{}); err != nil {
		t.Errorf("gRPC on a connection opened before the flood: %v", err)
	}
}

// TestHostileTrickledBody: an HTTP body sent a byte at a time is cut off
// by --http-read-timeout instead of holding its connection.
func TestHostileTrickledBody(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--http-read-timeout", "1s")
	conn, err := net.Dial("tcp", s.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 400
	fmt.Fprintf(conn, "POST /v1/schema/read HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", tokenSecret, size)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, conn)
	}()
	for sent := 0; sent < size; sent++ {
		select {
		case <-closed:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{' '}); err != nil {
			return
		}
	}
	t.Errorf("the server read a %d-byte body trickled over %v", size, size*50*time.Millisecond)
}

// TestHostileProfiles: --pprof does not serve the command line (which
// holds the token), and is refused on a listener off loopback.
func TestHostileProfiles(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--pprof")
	resp, err := http.Get(s.httpURL() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(string(body), tokenSecret) {
		t.Errorf("/debug/pprof/cmdline: %d %q; want it not served", resp.StatusCode, body)
	}
	r := runCLI(t, nil, "", "serve", "--datastore", "memory", "--token", tokenName+"="+tokenSecret,
		"--grpc-addr", freeAddr(t), "--http-addr", freeAddr(t), "--metrics-addr", "0.0.0.0:0", "--pprof")
	if r.code == 0 || !strings.Contains(r.stderr, "--pprof refused") {
		t.Errorf("--pprof on 0.0.0.0: exit %d, stderr %q; want a refusal", r.code, r.stderr)
	}
}

// TestHostileNoAuthWithToken: --insecure-no-auth with a token used to
// skip the loopback rule and serve wrong tokens as anonymous; the
// combination is refused, wherever it listens.
func TestHostileNoAuthWithToken(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  []string
	}{
		{"token flag, public address", []string{"--token", "ci=abcdefgh123", "--grpc-addr", "0.0.0.0:0"}, nil},
		{"token flag, loopback", []string{"--token", "ci=abcdefgh123", "--grpc-addr", freeAddr(t)}, nil},
		{"token variable, public address", []string{"--grpc-addr", "0.0.0.0:0"}, []string{"PEMBA_SERVE_TOKENS=ci=abcdefgh123"}},
	} {
		args := append([]string{"serve", "--datastore", "memory", "--insecure-no-auth", "--http-addr", ""}, c.args...)
		r := runCLI(t, c.env, "", args...)
		if r.code == 0 || !strings.Contains(r.stderr, "cannot be combined with bearer tokens") {
			t.Errorf("%s: exit %d, stderr %q; want a refusal", c.name, r.code, r.stderr)
		}
	}
}

// startNoAuthServer starts `pemba serve --insecure-no-auth` on loopback
// with the memory datastore. startServer always passes the test token,
// which --insecure-no-auth refuses.
func startNoAuthServer(t *testing.T) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir(), grpcAddr: freeAddr(t), httpAddr: freeAddr(t), log: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(pemba, "serve", "--datastore", "memory", "--insecure-no-auth",
		"--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr)
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() { s.stop() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.httpURL() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("pemba serve --insecure-no-auth exited: %v\n%s", s.exitErr, s.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pemba serve --insecure-no-auth not ready after 20s:\n%s", s.log)
		}
	}
}

// startDedicatedPostgres starts a PostgreSQL of the test's own, which it
// may stop, and returns it with a migrated database's URL.
func startDedicatedPostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	db, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNotInstalled) && !pgtest.RequiredByEnvironment() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Stop() })
	return db, db.NewDatabase(t)
}

// TestHostileDatabaseOutage: when PostgreSQL stops, requests fail with
// UNAVAILABLE (which clients retry), the gRPC health service and /readyz
// both report it, and neither /readyz nor the error shows the database's
// address, user or name.
func TestHostileDatabaseOutage(t *testing.T) {
	db, dbURL := startDedicatedPostgres(t)
	s := startServer(t, "--datastore", "postgres", "--datastore-url", dbURL, "--auto-migrate")
	c := setup(t, s)
	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{u.Host, u.Port(), strings.TrimPrefix(u.Path, "/"), "user=", u.User.Username() + "@"}
	leaks := func(text string) bool {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				return true
			}
		}
		return false
	}

	ctx := context.Background()
	_, err = c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fully(),
		Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")})
	if status.Code(err) != codes.Unavailable || leaks(status.Convert(err).Message()) {
		t.Errorf("check with the database stopped: %v; want UNAVAILABLE without the database's address", err)
	}

	cc, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	health := healthpb.NewHealthClient(cc)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gRPC health still %v 30s after the database stopped", resp.GetStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := s.httpDo("GET", "/readyz", "")
	if code != http.StatusServiceUnavailable || leaks(body) {
		t.Errorf("/readyz with health NOT_SERVING: %d %q; want 503 without the database's address", code, body)
	}
}

// TestHostileFullDisk: starting on a full disk fails at once, naming the
// data directory and the cause, instead of spinning without listening.
// It mounts a 2 MiB tmpfs, so it needs root.
func TestHostileFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	dataDir := filepath.Join(mnt, "data")
	s := startServer(t, "--datastore", "embedded", "--data-dir", dataDir)
	c := setup(t, s)
	for i := range 20 {
		if _, err := c.rels.WriteRelationships(context.Background(), &pb.WriteRelationshipsRequest{
			Updates: []*pb.RelationshipUpdate{touch(rel("document", fmt.Sprint("d", i), "viewer", "user", "u"))}}); err != nil {
			t.Fatal(err)
		}
	}
	s.kill9() // leaves a write-ahead log to flush at the next start

	fill, err := os.Create(filepath.Join(mnt, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := fill.Write(make([]byte, 64<<10)); err != nil {
			break // the file system is full
		}
	}
	fill.Close()

	r := runCLI(t, nil, "", "serve", "--datastore", "embedded", "--data-dir", dataDir, "--token", tokenName+"="+tokenSecret,
		"--grpc-addr", freeAddr(t), "--http-addr", freeAddr(t))
	// The last line is serve's own error (Pebble's logged errors name
	// the disk too, but exit code -1 means the harness had to kill it).
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code <= 0 || !strings.HasPrefix(last, "pemba: ") || !strings.Contains(last, dataDir) || !strings.Contains(last, "no space left on device") {
		t.Errorf("serve on a full disk: exit %d, last line %.500q; want it to exit with an error naming %s and \"no space left on device\"", r.code, last, dataDir)
	}
}
