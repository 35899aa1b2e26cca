package server

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// newHTTPServer serves engine (a fresh in-memory datastore when nil) on
// loopback gRPC and HTTP ports with the test token; edit adjusts the
// configuration first.
func newHTTPServer(tb testing.TB, engine storage.Engine, edit func(*Config)) *Server {
	tb.Helper()
	if engine == nil {
		e, err := pebble.Open(pebble.Options{InMemory: true})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { e.Close() })
		engine = e
	}
	cfg := Config{
		Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if edit != nil {
		edit(&cfg)
	}
	return serveTest(tb, cfg)
}

// httpGet fetches path from srv's HTTP listener.
func httpGet(tb testing.TB, srv *Server, path string) (int, string) {
	tb.Helper()
	resp, err := http.Get("http://" + srv.HTTPAddr().String() + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestProfilesWithoutCommandLine: --pprof serves profiles but not the
// command line, which holds --token and --datastore-url secrets.
func TestProfilesWithoutCommandLine(t *testing.T) {
	srv := newHTTPServer(t, nil, func(c *Config) { c.Profiling = true })
	if code, body := httpGet(t, srv, "/debug/pprof/cmdline"); code == http.StatusOK || strings.Contains(body, os.Args[0]) {
		t.Errorf("/debug/pprof/cmdline: %d %q; want it not served", code, body)
	}
	if code, _ := httpGet(t, srv, "/debug/pprof/heap?debug=1"); code != http.StatusOK {
		t.Errorf("/debug/pprof/heap: %d, want 200", code)
	}
	if rate := runtime.SetMutexProfileFraction(-1); rate != MutexProfileFraction {
		t.Errorf("mutex profile fraction %d with profiling, want %d", rate, MutexProfileFraction)
	}
	if code, _ := httpGet(t, srv, "/debug/pprof/mutex?debug=1"); code != http.StatusOK {
		t.Errorf("/debug/pprof/mutex: %d, want 200", code)
	}
}

// TestProfilingRefusedOffLoopback: unauthenticated profiles are served
// only on a loopback listener.
func TestProfilingRefusedOffLoopback(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	tok := []Token{{Name: "ci", Secret: "secret-one"}}
	for _, c := range []struct {
		name            string
		http, metrics   string
		wantErrContains string // "" means New succeeds
	}{
		{"loopback HTTP", "127.0.0.1:0", "", ""},
		{"loopback metrics, public HTTP", "0.0.0.0:0", "127.0.0.1:0", ""},
		{"public HTTP", "0.0.0.0:0", "", "--http-addr 0.0.0.0:0 is not a loopback address"},
		{"public metrics", "127.0.0.1:0", ":9090", "--metrics-addr :9090 is not a loopback address"},
		{"no listener", "", "", "--pprof needs --http-addr or --metrics-addr"},
	} {
		_, err := New(Config{Engine: engine, Tokens: tok, GRPCAddr: "127.0.0.1:0", HTTPAddr: c.http, MetricsAddr: c.metrics, Profiling: true})
		switch {
		case c.wantErrContains == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErrContains != "" && (err == nil || !strings.Contains(err.Error(), c.wantErrContains)):
			t.Errorf("%s: err %v, want one containing %q", c.name, err, c.wantErrContains)
		}
	}
}
