package server

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func TestParseToken(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Token
		ok   bool
	}{
		{"ci=0123456789", Token{"ci", "0123456789"}, true},
		{" ci=abc=defghij ", Token{"ci", "abc=defghij"}, true},
		{"ci", Token{}, false},
		{"=secret123", Token{}, false},
		{"ci=", Token{}, false},
		{"ci=short", Token{"ci", "short"}, false},
	} {
		got, err := ParseToken(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseToken(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	a := newAuthenticator([]Token{{"alice", "secret-one"}, {"bob", "secret-two"}}, false)
	open := newAuthenticator(nil, true)
	for _, c := range []struct {
		name   string
		auth   *authenticator
		header []string
		actor  string // "" means UNAUTHENTICATED
	}{
		{"first token", a, []string{"Bearer secret-one"}, "alice"},
		{"second token", a, []string{"bearer secret-two"}, "bob"},
		{"missing", a, nil, ""},
		{"wrong", a, []string{"Bearer secret-three"}, ""},
		{"prefix of a secret", a, []string{"Bearer secret"}, ""},
		{"no scheme", a, []string{"secret-one"}, ""},
		{"basic", a, []string{"Basic secret-one"}, ""},
		{"no auth, no header", open, nil, "anonymous"},
		{"no auth, any header", open, []string{"Bearer whatever"}, "anonymous"},
	} {
		ctx := context.Background()
		if c.header != nil {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", c.header[0]))
		}
		got, err := c.auth.authenticate(ctx)
		switch {
		case c.actor == "" && status.Code(err) != codes.Unauthenticated:
			t.Errorf("%s: err %v, want UNAUTHENTICATED", c.name, err)
		case c.actor != "" && (err != nil || actorFrom(got) != c.actor):
			t.Errorf("%s: actor %q, err %v; want %q", c.name, actorFrom(got), err, c.actor)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:50051": true, "localhost:80": true, "[::1]:9000": true, "127.8.9.10:1": true,
		"0.0.0.0:50051": false, ":50051": false, "10.0.0.1:80": false, "example.com:80": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}
