package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Token is a named bearer token. The name is recorded as the actor of
// every write made with it.
type Token struct {
	Name   string
	Secret string
}

// ParseToken reads `name=secret`.
func ParseToken(s string) (Token, error) {
	name, secret, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || name == "" || secret == "" {
		return Token{}, fmt.Errorf("token %q: want name=secret", clip(s))
	}
	if len(secret) < 8 {
		return Token{}, fmt.Errorf("token %q: secret is shorter than 8 characters", name)
	}
	return Token{Name: name, Secret: secret}, nil
}

func clip(s string) string {
	if i := strings.IndexByte(s, '='); i >= 0 {
		return s[:i] + "=…"
	}
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// authenticator checks bearer tokens. Secrets are kept as SHA-256 digests
// and compared in constant time against every token, so neither a
// secret's length nor which token matched leaks through timing.
type authenticator struct {
	digests [][sha256.Size]byte
	names   []string
	// disabled accepts every request as "anonymous" (--insecure-no-auth).
	// New never combines it with tokens: a server that has tokens
	// rejects a missing or wrong one.
	disabled bool
}

func newAuthenticator(tokens []Token, disabled bool) *authenticator {
	a := &authenticator{disabled: disabled}
	for _, t := range tokens {
		a.digests = append(a.digests, sha256.Sum256([]byte(t.Secret)))
		a.names = append(a.names, t.Name)
	}
	return a
}

type actorKey struct{}

// actorFrom returns the authenticated token's name.
func actorFrom(ctx context.Context) string {
	if s, ok := ctx.Value(actorKey{}).(string); ok {
		return s
	}
	return "anonymous"
}

// authenticate returns ctx carrying the caller's token name, or an
// UNAUTHENTICATED status.
func (a *authenticator) authenticate(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	actor, err := a.check(md.Get("authorization"))
	if err != nil {
		return nil, err
	}
	return context.WithValue(ctx, actorKey{}, actor), nil
}

// check returns the name of the token that the values of a request's
// authorization header carry, or an UNAUTHENTICATED status. Both the
// gRPC interceptors and the HTTP gateway's middleware call it.
func (a *authenticator) check(values []string) (string, error) {
	if a.disabled {
		return "anonymous", nil
	}
	if len(values) == 0 {
		return "", status.Error(codes.Unauthenticated, "missing bearer token: send `authorization: Bearer <token>`")
	}
	scheme, secret, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || secret == "" {
		return "", status.Error(codes.Unauthenticated, "malformed authorization header: want `Bearer <token>`")
	}
	got := sha256.Sum256([]byte(secret))
	match := -1
	for i, d := range a.digests {
		if subtle.ConstantTimeCompare(got[:], d[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	return a.names[match], nil
}

// unauthenticatedMethods are served without a token: health checks, so
// load balancers and orchestrators can probe.
func unauthenticated(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if unauthenticated(info.FullMethod) {
		return handler(ctx, req)
	}
	ctx, err := a.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if unauthenticated(info.FullMethod) {
		return handler(srv, ss)
	}
	ctx, err := a.authenticate(ss.Context())
	if err != nil {
		return err
	}
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// contextStream replaces a stream's context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
