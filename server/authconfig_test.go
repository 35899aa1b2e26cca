package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/storage/pebble"
)

// TestNewRefusesUnsafeAuth: --insecure-no-auth must never open a listener
// off loopback, and must never be combined with tokens (a server with
// tokens that let a wrong one through would look protected and not be).
func TestNewRefusesUnsafeAuth(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	tok := []Token{{Name: "ci", Secret: "secret-one"}}
	for _, c := range []struct {
		name    string
		cfg     Config
		wantErr string // "" means New succeeds
	}{
		{"no auth on loopback", Config{InsecureNoAuth: true, GRPCAddr: "127.0.0.1:0", HTTPAddr: "[::1]:0"}, ""},
		{"no auth off loopback", Config{InsecureNoAuth: true, GRPCAddr: "0.0.0.0:0"}, "not a loopback address"},
		{"no auth with a token, off loopback", Config{InsecureNoAuth: true, Tokens: tok, GRPCAddr: "0.0.0.0:0"}, "cannot be combined with bearer tokens"},
		{"no auth with a token, on loopback", Config{InsecureNoAuth: true, Tokens: tok, GRPCAddr: "127.0.0.1:0"}, "cannot be combined with bearer tokens"},
		{"no auth, metrics off loopback", Config{InsecureNoAuth: true, GRPCAddr: "127.0.0.1:0", MetricsAddr: ":9090"}, "not a loopback address"},
		{"tokens off loopback", Config{Tokens: tok, GRPCAddr: "0.0.0.0:0"}, ""},
		{"neither", Config{GRPCAddr: "127.0.0.1:0"}, "no bearer tokens configured"},
	} {
		c.cfg.Engine = engine
		_, err := New(c.cfg)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: err %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
}

// TestAuthenticatorRejectsWrongToken: with tokens configured, a missing or
// wrong token is UNAUTHENTICATED, never "anonymous".
func TestAuthenticatorRejectsWrongToken(t *testing.T) {
	a := newAuthenticator([]Token{{Name: "ci", Secret: "secret-one"}}, false)
	for _, header := range [][]string{nil, {"Bearer wrong-secret"}, {"Bearer "}} {
		if _, err := a.check(header); status.Code(err) != codes.Unauthenticated {
			t.Errorf("check(%q) = %v, want UNAUTHENTICATED", header, err)
		}
	}
	if actor, err := a.check([]string{"Bearer secret-one"}); err != nil || actor != "ci" {
		t.Errorf("check(right token) = %q, %v", actor, err)
	}
}
