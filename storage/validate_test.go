package storage

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
)

func TestValidateRelationship(t *testing.T) {
	ok := graph.MustParseRelationship("document:plan#viewer@group:eng#member")
	withCaveat := func(ctx map[string]any) graph.Relationship {
		r := ok
		r.Caveat = &graph.Caveat{Name: "ip_allowlist", Context: ctx}
		return r
	}
	zero := ok
	zero.Expiration = &time.Time{}
	badID := ok
	badID.Resource.ID = "a b"
	ellipsis := ok
	ellipsis.Subject.Relation = graph.Ellipsis
	cases := []struct {
		name  string
		r     graph.Relationship
		field string // "" when valid
	}{
		{"valid", ok, ""},
		{"caveat with context", withCaveat(map[string]any{"cidrs": []any{"10.0.0.0/8"}}), ""},
		{"bad resource id", badID, "resource id"},
		{"ellipsis spelled out", ellipsis, "subject relation"},
		{"zero expiration", zero, "expiration"},
		{"context too large", withCaveat(map[string]any{"k": strings.Repeat("v", MaxCaveatContextBytes)}), "caveat context"},
		{"context at the depth limit", withCaveat(map[string]any{"k": nested(graph.MaxCaveatContextDepth - 1)}), ""},
		{"context too deep", withCaveat(map[string]any{"k": nested(graph.MaxCaveatContextDepth)}), "caveat context value"},
	}
	for _, c := range cases {
		err := ValidateRelationship(c.r)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v, want ErrInvalidArgument naming %q", c.name, err, c.field)
		}
	}
}

// nested returns levels of nested arrays around a string; a small value
// (well within MaxCaveatContextBytes) that nests deeply.
func nested(levels int) any {
	var v any = "v"
	for range levels {
		v = []any{v}
	}
	return v
}

// TestEncodeCaveatContextDepth checks that EncodeCaveatContext, which
// engines call on their own, refuses a deep context before encoding it.
func TestEncodeCaveatContextDepth(t *testing.T) {
	if _, err := EncodeCaveatContext(map[string]any{"k": nested(graph.MaxCaveatContextDepth - 1)}); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	_, err := EncodeCaveatContext(map[string]any{"k": nested(100_000)})
	if !errors.Is(err, ErrInvalidArgument) || !errors.Is(err, graph.ErrInvalid) ||
		!strings.Contains(err.Error(), "caveat context: invalid caveat context value \"k\": nests objects and arrays deeper than the limit of 32 levels") {
		t.Errorf("100,000 levels: %v", err)
	}
}

func TestFilterValidate(t *testing.T) {
	rel := func(s string) *string { return &s }
	cases := []struct {
		name  string
		f     Filter
		field string
	}{
		{"empty", Filter{}, ""},
		{"full", Filter{ResourceType: "document", ResourceIDs: []string{"a", "b"}, Relation: "viewer",
			Subject: &SubjectFilter{Type: "user", IDs: []string{"*"}, Relation: rel("")}}, ""},
		{"ids without type", Filter{ResourceIDs: []string{"a"}}, "filter resource ids"},
		{"wildcard resource id", Filter{ResourceType: "document", ResourceIDs: []string{"*"}}, "filter resource id"},
		{"bad type", Filter{ResourceType: "Doc"}, "filter resource type"},
		{"subject without type", Filter{Subject: &SubjectFilter{IDs: []string{"a"}}}, "filter subject type"},
		{"subject ellipsis spelled out", Filter{Subject: &SubjectFilter{Type: "user", Relation: rel("...")}}, "filter subject relation"},
	}
	for _, c := range cases {
		err := c.f.Validate()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %v, want ErrInvalidArgument naming %q", c.name, err, c.field)
		}
	}
	if err := (ReverseFilter{}).Validate(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("reverse filter without a subject type: %v", err)
	}
	if err := (QueryOptions{Limit: -1}).Validate(); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative limit: %v", err)
	}
}

// FuzzValidateRelationship stores-checks relationships whose caveat context
// is arbitrary JSON, decoded as a request or a relationship string would
// decode it: validation never panics, refusals wrap ErrInvalidArgument,
// and an accepted context encodes within MaxCaveatContextBytes and decodes
// to a context that is accepted again.
func FuzzValidateRelationship(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"cidrs": ["10.0.0.0/8"], "n": 1.5, "b": true, "z": null}`,
		`{"a": {"b": {"c": [1, 2, {"d": "e"}]}}}`,
		`{"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"\u00ff": "\ud800", "big": 1e308}`,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	base := graph.MustParseRelationship("document:plan#viewer@group:eng#member")
	f.Fuzz(func(t *testing.T, ctxJSON string, useNumber bool) {
		dec := json.NewDecoder(strings.NewReader(ctxJSON))
		if useNumber {
			dec.UseNumber()
		}
		var ctx map[string]any
		if dec.Decode(&ctx) != nil {
			return
		}
		r := base
		r.Caveat = &graph.Caveat{Name: "cav", Context: ctx}
		if err := ValidateRelationship(r); err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("refusal %v does not wrap ErrInvalidArgument", err)
			}
			return
		}
		b, err := EncodeCaveatContext(ctx)
		if err != nil || len(b) > MaxCaveatContextBytes {
			t.Fatalf("accepted context %s encodes to %d bytes, %v", ctxJSON, len(b), err)
		}
		if len(ctx) == 0 {
			return
		}
		var again map[string]any
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("encoded context %s does not decode: %v", b, err)
		}
		r.Caveat.Context = again
		if err := ValidateRelationship(r); err != nil {
			t.Fatalf("context %s, stored as %s, is refused when read back: %v", ctxJSON, b, err)
		}
	})
}
