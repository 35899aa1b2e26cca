package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pembadb/pemba/storage"
)

func labels(kv ...string) []storage.Label {
	var out []storage.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, storage.Label{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// TestValidateMetadata: every refusal names the field and the limit.
func TestValidateMetadata(t *testing.T) {
	many := make([]string, 0, 2*(MaxLabels+1))
	for i := range MaxLabels + 1 {
		many = append(many, fmt.Sprintf("k%d", i), "v")
	}
	for _, c := range []struct {
		name string
		meta storage.WriteMetadata
		want string
	}{
		{"none", storage.WriteMetadata{}, ""},
		{"typical", storage.WriteMetadata{Reason: "SEC-42 approved by bob\nsee the ticket",
			Labels: labels("approver", "bob", "ticket", "SEC-42", "approver", "amy", "k8s.io/team-name_2", "", "X", "ünïcode ✓")}, ""},
		{"longest key and value", storage.WriteMetadata{Labels: labels(strings.Repeat("k", 63), strings.Repeat("v", 256))}, ""},
		{"limit of labels", storage.WriteMetadata{Labels: labels(many[:2*MaxLabels]...)}, ""},
		{"too many labels", storage.WriteMetadata{Labels: labels(many...)},
			"labels: 33 labels exceed the limit of 32 per request"},
		{"empty key", storage.WriteMetadata{Labels: labels("a", "b", "", "x")}, "labels[1].key: empty"},
		{"long key", storage.WriteMetadata{Labels: labels(strings.Repeat("k", 64), "x")},
			"labels[0].key: 64 characters exceed the limit of 63"},
		{"key starts with a dot", storage.WriteMetadata{Labels: labels(".k", "x")},
			`labels[0].key: ".k" must start with a letter or digit`},
		{"key with a space", storage.WriteMetadata{Labels: labels("a", "b", "c", "d", "my key", "x")},
			`labels[2].key: "my key": ' ' is not allowed; a key is letters, digits and _ . - /`},
		{"key with =", storage.WriteMetadata{Labels: labels("a=b", "x")},
			`labels[0].key: "a=b": '=' is not allowed; a key is letters, digits and _ . - /`},
		{"non-ASCII key", storage.WriteMetadata{Labels: labels("cléf", "x")},
			`labels[0].key: "cléf": 'é' is not allowed; a key is letters, digits and _ . - /`},
		{"long value", storage.WriteMetadata{Labels: labels("k", strings.Repeat("é", 129))},
			"labels[0].value: 258 bytes exceed the limit of 256"},
		{"value with a newline", storage.WriteMetadata{Labels: labels("k", "a\nb")},
			"labels[0].value: contains the control character U+000A"},
		{"value not UTF-8", storage.WriteMetadata{Labels: labels("k", "\xff")}, "labels[0].value: not valid UTF-8"},
		{"long reason", storage.WriteMetadata{Reason: strings.Repeat("r", 1025)},
			"reason: 1025 bytes exceed the limit of 1024"},
		{"reason with NUL", storage.WriteMetadata{Reason: "a\x00b"},
			"reason: contains the control character U+0000; only newlines and tabs are allowed"},
		{"reason not UTF-8", storage.WriteMetadata{Reason: "\xc3"}, "reason: not valid UTF-8"},
	} {
		err := ValidateMetadata(c.meta)
		if got := errText(err); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v is not ErrInvalidInput", c.name, err)
		}
	}
}

// TestWritesValidateMetadata: every kind of write refuses bad metadata
// before writing anything.
func TestWritesValidateMetadata(t *testing.T) {
	w := newWriter(t, 10)
	ctx := context.Background()
	bad := storage.WriteMetadata{Labels: labels("bad key", "x")}
	want := `labels[0].key: "bad key": ' ' is not allowed; a key is letters, digits and _ . - /`
	head, err := w.revs.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.WriteRelationships(ctx, storage.WriteRequest{Mutations: touches("doc:a#viewer@user:u"), Metadata: bad}, "updates")
	if errText(err) != want {
		t.Errorf("WriteRelationships: %v, want %q", err, want)
	}
	_, err = w.DeleteRelationships(ctx, storage.Filter{ResourceType: "doc"}, 0, bad, Field("filter"))
	if errText(err) != want {
		t.Errorf("DeleteRelationships: %v, want %q", err, want)
	}
	_, err = w.NewImport(ctx, 10, bad, func(int, storage.Revision) error { return nil })
	if errText(err) != want {
		t.Errorf("NewImport: %v, want %q", err, want)
	}
	_, err = w.WriteSchema(ctx, "definition user {}", nil, bad)
	if errText(err) != want {
		t.Errorf("WriteSchema: %v, want %q", err, want)
	}
	if after, err := w.engine.HeadRevision(ctx); err != nil || after != head {
		t.Errorf("head moved from %d to %d (%v): a refused write committed", head, after, err)
	}
}

// TestLabelsFromMap: entries become labels in key order, non-strings as
// JSON; a bad entry is named by its key.
func TestLabelsFromMap(t *testing.T) {
	got, err := LabelsFromMap(map[string]any{"ticket": "SEC-42", "approved": true, "count": 3.0, "extra": map[string]any{"a": 1.0}}, Field("meta"))
	if err != nil {
		t.Fatal(err)
	}
	want := labels("approved", "true", "count", "3", "extra", `{"a":1}`, "ticket", "SEC-42")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	many := map[string]any{}
	for i := range MaxLabels + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"bad key!": "x"}, `meta.bad key!: key: "bad key!": ' ' is not allowed`},
		{map[string]any{"long": strings.Repeat("v", MaxLabelValueBytes+1)}, "meta.long: 257 bytes exceed the limit of 256"},
		{many, "meta: 33 entries exceed the limit of 32 labels per request"},
	} {
		_, err := LabelsFromMap(c.m, Field("meta"))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%v: error %v, want %q", c.m, err, c.want)
		}
	}
}
