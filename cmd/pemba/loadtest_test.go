package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/server"
	"github.com/pembadb/pemba/storage/pebble"
)

// TestLoadtestAndExampleCommands runs the real binary: the shipped
// identity-platform validation file passes `pemba validate`, and `pemba
// loadtest` measures an in-process server, writing its JSON report.
func TestLoadtestAndExampleCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildPemba(t)

	out, stderr, code := runPemba(t, bin, "validate", "../../examples/identity-platform/validation.yaml")
	if code != 0 || !strings.Contains(out, "validation.yaml: valid") {
		t.Errorf("validate the identity-platform example: exit %d\n%s%s", code, out, stderr)
	}

	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	token, err := server.ParseToken("loadtest=loadtest-secret")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{
		Engine: engine, Tokens: []server.Token{token},
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	report := filepath.Join(t.TempDir(), "report.json")
	common := []string{"loadtest", "--endpoint", srv.Addr().String(), "--insecure", "--token", "loadtest-secret",
		"--metrics-url", "http://" + srv.HTTPAddr().String() + "/metrics", "--quiet",
		"--concurrency", "2", "--duration", "200ms"}
	out, stderr, code = runPemba(t, bin, append(common, "--workload", "check-random", "--json", report, "--markdown")...)
	if code != 0 {
		t.Fatalf("loadtest: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"loaded 10098 relationships", "| nested-org ×1 | check-random | 2 | check |", "checks / floor:", "checks / read floor:"} {
		if !strings.Contains(out, want) {
			t.Errorf("loadtest output lacks %q:\n%s", want, out)
		}
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Operations []struct {
			Name  string `json:"name"`
			Count int64  `json:"count"`
		} `json:"operations"`
		FloorQPS         float64  `json:"floor_qps"`
		RatioToFloor     float64  `json:"ratio_to_floor"`
		RatioToReadFloor float64  `json:"ratio_to_read_floor"`
		CacheHitRatio    *float64 `json:"cache_hit_ratio"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Operations) != 1 || r.Operations[0].Name != "check" || r.Operations[0].Count == 0 ||
		r.FloorQPS <= 0 || r.RatioToFloor <= 0 || r.RatioToReadFloor <= 0 || r.CacheHitRatio == nil {
		t.Errorf("report: %s", raw)
	}

	out, stderr, code = runPemba(t, bin, append(common, "--skip-load", "--workload", "new-enemy")...)
	if code != 0 || !strings.Contains(out, "0 violations") {
		t.Errorf("loadtest new-enemy: exit %d\n%s%s", code, out, stderr)
	}

	_, stderr, code = runPemba(t, bin, append(common, "--workload", "nope")...)
	if code != 2 || !strings.Contains(stderr, `workload "nope": unknown`) {
		t.Errorf("unknown workload: exit %d, stderr %q", code, stderr)
	}
}

// TestLoadtestTLSHint: a TLS mismatch says which flag to use.
func TestLoadtestTLSHint(t *testing.T) {
	for _, tc := range []struct {
		err       string
		plaintext bool
		want      string
	}{
		{"connection error: desc = \"transport: authentication handshake failed: tls: first record does not look like a TLS handshake\"", false, "pass --insecure)"},
		{"connection error: desc = \"error reading server preface: EOF\"", true, "pass --insecure=false)"},
		{"rpc error: code = Unauthenticated desc = missing token", true, ""},
	} {
		got := tlsHint(errors.New(tc.err), tc.plaintext)
		if tc.want == "" && got != "" || !strings.HasSuffix(got, tc.want) {
			t.Errorf("tlsHint(%q, plaintext %v) = %q, want a hint ending %q", tc.err, tc.plaintext, got, tc.want)
		}
	}
}
