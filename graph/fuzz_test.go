package graph

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseRelationship checks that parsing never panics, that every error
// is a well-formed *ParseError, and that whatever parses is valid and
// survives format → parse unchanged, with a stable canonical form.
func FuzzParseRelationship(f *testing.F) {
	for _, s := range []string{
		"document:plan#viewer@user:alice",
		"tenant/document:plan#viewer@group:eng#member",
		"doc:1#viewer@user:*",
		"doc:1#viewer@user:a#...",
		`doc:1#viewer@user:a[ip_allowed:{"cidr":"10.0.0.0/8","n":[1,2.5,{"x":null}]}]`,
		"doc:1#viewer@user:a[expiration:2026-01-02T03:04:05.123456789+05:30]",
		`doc:1#viewer@user:a[expiration:2026-01-02T03:04:05Z][cav:{"a":"]"}]`,
		"a/b/c:x|y-z=+/_#rel@b_c:id[cav]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelationship(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseRelationship(%q) error %v is not a *ParseError", s, err)
			}
			if pe.Column < 1 || pe.Column > len(s)+1 || pe.Input != s || pe.Part == "" {
				t.Fatalf("ParseRelationship(%q): malformed error %#v", s, pe)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRelationship(%q) = %v, which fails Validate: %v", s, r, err)
		}
		out := r.String()
		r2, err := ParseRelationship(out)
		if err != nil {
			t.Fatalf("ParseRelationship(%q) formats as %q, which does not parse: %v", s, out, err)
		}
		if !reflect.DeepEqual(r, r2) || !r.Equal(r2) {
			t.Fatalf("round trip changed the relationship:\ninput %q\nfirst  %#v\nsecond %#v", s, r, r2)
		}
		if out2 := r2.String(); out2 != out {
			t.Fatalf("formatting is not stable: %q then %q", out, out2)
		}
	})
}
