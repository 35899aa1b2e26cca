package graph

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseErrorFields(t *testing.T) {
	_, err := ParseRelationship("doc:1#Viewer@user:a")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	want := ParseError{Kind: "relationship", Input: "doc:1#Viewer@user:a", Column: 7, Part: "relation", Value: "Viewer"}
	if pe.Kind != want.Kind || pe.Input != want.Input || pe.Column != want.Column || pe.Part != want.Part || pe.Value != want.Value {
		t.Errorf("got %+v, want %+v", *pe, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	const wantMsg = `parse relationship "doc:1#Viewer@user:a": invalid relation "Viewer" at column 7: must match [a-z][a-z0-9_]{1,62}[a-z0-9]`
	if !strings.HasPrefix(err.Error(), wantMsg) {
		t.Errorf("error\n%s\ndoes not start with\n%s", err, wantMsg)
	}
}

func TestObjectIDLength(t *testing.T) {
	for _, tc := range []struct {
		n     int
		valid bool
	}{{1, true}, {1024, true}, {1025, false}, {4096, false}} {
		id := strings.Repeat("x", tc.n)
		for _, s := range []string{"doc:" + id + "#viewer@user:a", "doc:1#viewer@user:" + id} {
			r, err := ParseRelationship(s)
			if (err == nil) != tc.valid {
				t.Errorf("%d-byte id: err = %v, want valid=%v", tc.n, err, tc.valid)
				continue
			}
			if err != nil {
				if !strings.Contains(err.Error(), "must be at most 1024 bytes") {
					t.Errorf("%d-byte id: error %q does not give the limit", tc.n, err)
				}
				if len(err.Error()) > 400 {
					t.Errorf("%d-byte id: error is %d bytes long; long values must be clipped", tc.n, len(err.Error()))
				}
				continue
			}
			if r.String() != s {
				t.Errorf("%d-byte id does not round-trip", tc.n)
			}
		}
	}
}

func TestTypeNameLength(t *testing.T) {
	seg63 := "a" + strings.Repeat("b", 61) + "c"
	for _, tc := range []struct {
		typ   string
		valid bool
	}{
		{"abc", true},
		{seg63 + "/doc", true},
		{seg63 + "d/doc", false},                   // 64-byte prefix segment
		{seg63 + "d", true},                        // 64-byte last segment
		{"abc/" + seg63 + "/" + seg63[:60], true},  // 128 bytes
		{"abc/" + seg63 + "/" + seg63[:61], false}, // 129 bytes
	} {
		err := ObjectRef{Type: tc.typ, ID: "1"}.Validate()
		if (err == nil) != tc.valid {
			t.Errorf("type of %d bytes %q: err = %v, want valid=%v", len(tc.typ), tc.typ, err, tc.valid)
		}
		_, perr := ParseObjectRef(tc.typ + ":1")
		if (perr == nil) != tc.valid {
			t.Errorf("ParseObjectRef(%q:1): err = %v, want valid=%v", tc.typ, perr, tc.valid)
		}
	}
}

func TestValidate(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func() Relationship { return MustParseRelationship("doc:1#viewer@user:a") }
	for _, tc := range []struct {
		name   string
		modify func(r *Relationship)
		part   string // "" when valid
	}{
		{"plain", func(r *Relationship) {}, ""},
		{"subject set", func(r *Relationship) { r.Subject.Relation = "member" }, ""},
		{"wildcard", func(r *Relationship) { r.Subject.Object.ID = Wildcard }, ""},
		{"caveat with context", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "ip_allowed", Context: map[string]any{
				"s": "x", "f": 1.5, "i": 3, "u": uint8(2), "b": true, "n": nil, "num": json.Number("12"),
				"l": []any{1.0, "a"}, "m": map[string]any{"k": []any{}}}}
		}, ""},
		{"expiration", func(r *Relationship) { r.Expiration = &at }, ""},
		{"empty resource type", func(r *Relationship) { r.Resource.Type = "" }, "resource type"},
		{"upper-case resource type", func(r *Relationship) { r.Resource.Type = "Doc" }, "resource type"},
		{"empty resource id", func(r *Relationship) { r.Resource.ID = "" }, "resource id"},
		{"wildcard resource", func(r *Relationship) { r.Resource.ID = Wildcard }, "resource id"},
		{"bad resource id", func(r *Relationship) { r.Resource.ID = "a b" }, "resource id"},
		{"empty relation", func(r *Relationship) { r.Relation = "" }, "relation"},
		{"ellipsis relation", func(r *Relationship) { r.Relation = Ellipsis }, "relation"},
		{"bad subject type", func(r *Relationship) { r.Subject.Object.Type = "u" }, "subject type"},
		{"bad wildcard type", func(r *Relationship) { r.Subject.Object = ObjectRef{"u", Wildcard} }, "subject type"},
		{"unicode subject id", func(r *Relationship) { r.Subject.Object.ID = "ünï" }, "subject id"},
		{"ellipsis stored literally", func(r *Relationship) { r.Subject.Relation = Ellipsis }, "subject relation"},
		{"wildcard with relation", func(r *Relationship) {
			r.Subject = SubjectRef{Object: ObjectRef{"user", Wildcard}, Relation: "member"}
		}, "subject relation"},
		{"bad subject relation", func(r *Relationship) { r.Subject.Relation = "Member" }, "subject relation"},
		{"empty caveat name", func(r *Relationship) { r.Caveat = &Caveat{} }, "caveat name"},
		{"reserved caveat name", func(r *Relationship) { r.Caveat = &Caveat{Name: "expiration"} }, "caveat name"},
		{"NaN in context", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": math.NaN()}}
		}, "caveat context value"},
		{"nested Inf in context", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": []any{map[string]any{"y": math.Inf(1)}}}}
		}, "caveat context value"},
		{"non-JSON context value", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": struct{}{}}}
		}, "caveat context value"},
		{"invalid UTF-8 in a context string", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": []any{"\xff"}}}
		}, "caveat context value"},
		{"invalid UTF-8 in a context key", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"\xff": 1.0}}
		}, "caveat context key"},
		{"bad json.Number", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": json.Number("1x")}}
		}, "caveat context value"},
		{"context at the depth limit", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": nestedContext(MaxCaveatContextDepth - 1)}}
		}, ""},
		{"context past the depth limit", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": nestedContext(MaxCaveatContextDepth)}}
		}, "caveat context value"},
		{"context 100,000 levels deep", func(r *Relationship) {
			r.Caveat = &Caveat{Name: "cav", Context: map[string]any{"x": nestedContext(100_000)}}
		}, "caveat context value"},
		{"expiration after 9999", func(r *Relationship) {
			e := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			r.Expiration = &e
		}, "expiration"},
		{"expiration before 0000", func(r *Relationship) {
			e := time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC)
			r.Expiration = &e
		}, "expiration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.modify(&r)
			err := r.Validate()
			if tc.part == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", r, err)
				}
				// A valid relationship formats and re-parses to an equal one.
				r2, err := ParseRelationship(r.String())
				if err != nil {
					t.Fatalf("valid %v does not re-parse: %v", r, err)
				}
				if !r.Equal(r2) && tc.name != "caveat with context" { // ints re-parse as float64
					t.Fatalf("re-parsed %v differs: %#v", r, r2)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate(%v) = %v, want a *ValidationError", r, err)
			}
			if ve.Part != tc.part {
				t.Errorf("Validate(%v) blamed %q (%v), want %q", r, ve.Part, err, tc.part)
			}
		})
	}
}

func TestSubjectAndObjectValidate(t *testing.T) {
	if err := (SubjectRef{Object: ObjectRef{"user", Wildcard}}).Validate(); err != nil {
		t.Errorf("wildcard subject: %v", err)
	}
	if err := (ObjectRef{"user", Wildcard}).Validate(); err == nil {
		t.Error("wildcard object validated")
	}
	if err := (SubjectRef{Object: ObjectRef{"group", "eng"}, Relation: "member"}).Validate(); err != nil {
		t.Errorf("subject set: %v", err)
	}
}

func TestStringMatchesParse(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 120_000_000, time.FixedZone("x", 3600))
	r := Relationship{
		Resource:   ObjectRef{"tenant/doc", "a|b"},
		Relation:   "viewer",
		Subject:    SubjectRef{Object: ObjectRef{"group", "eng"}, Relation: "member"},
		Caveat:     &Caveat{Name: "ip_allowed", Context: map[string]any{"b": "<&>", "a": []any{1.0}}},
		Expiration: &at,
	}
	const want = `tenant/doc:a|b#viewer@group:eng#member[ip_allowed:{"a":[1],"b":"<&>"}][expiration:2026-01-02T02:04:05.12Z]`
	if got := r.String(); got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	r2 := MustParseRelationship(want)
	if !r.Equal(r2) {
		t.Errorf("parsed %#v, not equal to %#v", r2, r)
	}
	if r.Key() != r2.Key() || r.Key().String() != "tenant/doc:a|b#viewer@group:eng#member" {
		t.Errorf("keys differ: %v, %v", r.Key(), r2.Key())
	}
	if got := r.Subject.String(); got != "group:eng#member" {
		t.Errorf("Subject.String() = %q", got)
	}
	if got := r.Resource.String(); got != "tenant/doc:a|b" {
		t.Errorf("Resource.String() = %q", got)
	}
}

func TestEqual(t *testing.T) {
	a := MustParseRelationship(`doc:1#viewer@user:a[cav:{"x":1}][expiration:2026-01-02T03:04:05Z]`)
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{`doc:1#viewer@user:a[cav:{"x":1}][expiration:2026-01-02T04:04:05+01:00]`, true},
		{`doc:1#viewer@user:a[expiration:2026-01-02T03:04:05Z][cav:{"x":1.0}]`, true},
		{`doc:1#viewer@user:a[cav:{"x":2}][expiration:2026-01-02T03:04:05Z]`, false},
		{`doc:1#viewer@user:a[cav][expiration:2026-01-02T03:04:05Z]`, false},
		{`doc:1#viewer@user:a[other:{"x":1}][expiration:2026-01-02T03:04:05Z]`, false},
		{`doc:1#viewer@user:a[cav:{"x":1}]`, false},
		{`doc:1#viewer@user:a[cav:{"x":1}][expiration:2026-01-02T03:04:06Z]`, false},
		{`doc:1#viewer@user:b[cav:{"x":1}][expiration:2026-01-02T03:04:05Z]`, false},
	} {
		b := MustParseRelationship(tc.s)
		if got := a.Equal(b); got != tc.want {
			t.Errorf("Equal(%s, %s) = %v, want %v", a, b, got, tc.want)
		}
		if a.Key() != b.Key() {
			continue
		}
		if CompareForward(a, b) != 0 || CompareReverse(a, b) != 0 {
			t.Errorf("same key compares unequal: %s, %s", a, b)
		}
	}
	if !MustParseRelationship("d_d:1#rel@u_u:a[cav]").Equal(MustParseRelationship("d_d:1#rel@u_u:a[cav:{}]")) {
		t.Error("nil and empty contexts differ")
	}
}

func TestMustParseRelationshipPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	MustParseRelationship("not a relationship")
}

func BenchmarkParseRelationship(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRelationship(bc.s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkString(b *testing.B) {
	for _, bc := range benchCases {
		r := MustParseRelationship(bc.s)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = r.String()
			}
		})
	}
}

var benchCases = []struct{ name, s string }{
	{"plain", "document:plan#viewer@user:alice"},
	{"subject_set", "tenant/document:8f14e45fceea167a5a36dedd4bea2543#viewer@tenant/group:engineering#member"},
	{"expiration", "document:plan#viewer@user:alice[expiration:2026-01-02T03:04:05.123Z]"},
	{"caveat", `document:plan#viewer@user:alice[ip_allowed:{"cidr":"10.0.0.0/8","ip":"10.1.2.3"}][expiration:2026-01-02T03:04:05Z]`},
}

func TestValidateNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"type", ValidateTypeName("tenant/document"), true},
		{"type too short", ValidateTypeName("do"), false},
		{"relation", ValidateRelationName("can_view"), true},
		{"relation trailing _", ValidateRelationName("can_"), false},
		{"relation with prefix", ValidateRelationName("a_b/view"), false},
		{"caveat with prefix", ValidateCaveatName("tenant/ip_allowed"), true},
		{"caveat reserved", ValidateCaveatName("expiration"), false},
		{"id", ValidateObjectID("a|b", false), true},
		{"wildcard subject id", ValidateObjectID("*", true), true},
		{"wildcard object id", ValidateObjectID("*", false), false},
		{"id with dot", ValidateObjectID("a.b", true), true},
		{"e-mail id", ValidateObjectID("ada@example.com", true), true},
		{"id with colon", ValidateObjectID("a:b", true), false},
	} {
		if (tc.err == nil) != tc.want {
			t.Errorf("%s: err = %v, want valid=%v", tc.name, tc.err, tc.want)
		}
		if tc.err != nil && !errors.Is(tc.err, ErrInvalid) {
			t.Errorf("%s: %v does not match ErrInvalid", tc.name, tc.err)
		}
	}
}

// nestedContext returns a context value of levels nested objects and
// arrays, alternating: [{"k":[{"k":...}]}].
func nestedContext(levels int) any {
	var v any = "leaf"
	for i := range levels {
		if i%2 == 0 {
			v = map[string]any{"k": v}
		} else {
			v = []any{v}
		}
	}
	return v
}

// TestValidateContextDepth checks the depth check callers apply to
// context values Validate has not seen.
func TestValidateContextDepth(t *testing.T) {
	if err := ValidateContextDepth("x", nestedContext(MaxCaveatContextDepth-1)); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	err := ValidateContextDepth("x", nestedContext(MaxCaveatContextDepth))
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || ve.Value != "x" ||
		ve.Message != "nests objects and arrays deeper than the limit of 32 levels" {
		t.Errorf("past the limit: %v", err)
	}
	for _, scalar := range []any{nil, 1.0, "s", true} {
		if err := ValidateContextDepth("x", scalar); err != nil {
			t.Errorf("%v: %v", scalar, err)
		}
	}
}
