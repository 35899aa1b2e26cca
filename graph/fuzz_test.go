package graph

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
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

// FuzzFormatRelationship builds relationships from arbitrary parts and checks
// the other direction of losslessness: every relationship Validate accepts
// formats to a string that parses back to an equal relationship.
func FuzzFormatRelationship(f *testing.F) {
	f.Add("document", "plan", "viewer", "group", "eng", "member", "", "", int64(0), int64(0))
	f.Add("tenant/doc", "a|b=+/-_", "viewer", "user", "*", "", "ip_allowed", `{"a":[1,"]"],"b":{"c":null}}`, int64(1767323045), int64(120000000))
	f.Add("doc", "1", "viewer", "user", "a", "...", "cav", `{}`, int64(-62135596800), int64(0))
	f.Fuzz(func(t *testing.T, rt, rid, rel, st, sid, srel, cav, ctxJSON string, sec, nsec int64) {
		r := Relationship{
			Resource: ObjectRef{Type: rt, ID: rid},
			Relation: rel,
			Subject:  SubjectRef{Object: ObjectRef{Type: st, ID: sid}, Relation: srel},
		}
		if cav != "" {
			c := &Caveat{Name: cav}
			if ctxJSON != "" && json.Unmarshal([]byte(ctxJSON), &c.Context) != nil {
				return
			}
			r.Caveat = c
		}
		if sec != 0 || nsec != 0 {
			e := time.Unix(sec, nsec)
			r.Expiration = &e
		}
		if r.Validate() != nil {
			return
		}
		s := r.String()
		r2, err := ParseRelationship(s)
		if err != nil {
			t.Fatalf("valid %#v formats as %q, which does not parse: %v", r, s, err)
		}
		if !r.Equal(r2) {
			t.Fatalf("valid %#v formats as %q, which parses as %#v", r, s, r2)
		}
		if s2 := r2.String(); s2 != s {
			t.Fatalf("formatting is not stable: %q then %q", s, s2)
		}
	})
}
