package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/audit"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

var ctx = context.Background()

func openEngine(t *testing.T) storage.Engine {
	t.Helper()
	e, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func rel(t *testing.T, s string) graph.Relationship {
	t.Helper()
	r, err := graph.ParseRelationship(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func expiring(t *testing.T, s string, at time.Time) graph.Relationship {
	r := rel(t, s)
	r.Expiration = &at
	return r
}

// history is a small log: the revisions written, by name, and the
// instant the derived expirations are computed at.
type history struct {
	e    storage.Engine
	revs map[string]storage.Revision
	now  time.Time
}

// newHistory writes:
//
//	schema  admin   +definition document, +relation document#viewer
//	grant   ci      CREATE document:x#viewer@user:alice, TOUCH document:y#viewer@user:bob (expires +1h)
//	                labels ticket=SEC-42 approver=bob
//	revoke  ops     DELETE document:x#viewer@user:alice
//	short   ci      TOUCH document:z#viewer@user:carol (expires +1h)
//	extend  ci      TOUCH document:z#viewer@user:carol (expires +3h)   replaces it before it expires
//	import  loader  folder:f1#viewer@user:alice, folder:f2#viewer@group:eng#member
//	purge   ops     bulk delete folder:* @user:*
//
// and derives expirations at +2h: only bob's on document:y.
func newHistory(t *testing.T) *history {
	t.Helper()
	h := &history{e: openEngine(t), revs: map[string]storage.Revision{}}
	start := time.Now()
	h.now = start.Add(2 * time.Hour)
	write := func(name, actor string, labels []storage.Label, muts ...storage.Mutation) {
		rev, err := h.e.Write(ctx, storage.WriteRequest{Mutations: muts,
			Metadata: storage.WriteMetadata{Actor: actor, Reason: name, Labels: labels}})
		if err != nil {
			t.Fatal(err)
		}
		h.revs[name] = rev
	}
	var err error
	h.revs["schema"], err = h.e.WriteSchema(ctx, storage.SchemaWrite{
		Schema:   storage.StoredSchema{Text: "definition document {}"},
		Metadata: storage.WriteMetadata{Actor: "admin", Reason: "schema"},
		Diff:     []storage.SchemaChange{{Added: true, Kind: "definition", Name: "document"}, {Added: true, Kind: "relation", Name: "document#viewer"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	write("grant", "ci", []storage.Label{{Key: "ticket", Value: "SEC-42"}, {Key: "approver", Value: "bob"}},
		storage.Mutation{Op: storage.OpCreate, Relationship: rel(t, "document:x#viewer@user:alice")},
		storage.Mutation{Op: storage.OpTouch, Relationship: expiring(t, "document:y#viewer@user:bob", start.Add(time.Hour))})
	write("revoke", "ops", nil, storage.Mutation{Op: storage.OpDelete, Relationship: rel(t, "document:x#viewer@user:alice")})
	write("short", "ci", nil, storage.Mutation{Op: storage.OpTouch, Relationship: expiring(t, "document:z#viewer@user:carol", start.Add(time.Hour))})
	write("extend", "ci", nil, storage.Mutation{Op: storage.OpTouch, Relationship: expiring(t, "document:z#viewer@user:carol", start.Add(3*time.Hour))})
	imp, err := h.e.Import(ctx, func(yield func(graph.Relationship, error) bool) {
		_ = yield(rel(t, "folder:f1#viewer@user:alice"), nil) && yield(rel(t, "folder:f2#viewer@group:eng#member"), nil)
	}, storage.ImportOptions{Metadata: storage.WriteMetadata{Actor: "loader", Reason: "import"}})
	if err != nil {
		t.Fatal(err)
	}
	h.revs["import"] = imp.Revisions[0]
	del, err := h.e.DeleteRelationships(ctx, storage.Filter{ResourceType: "folder", Subject: &storage.SubjectFilter{Type: "user"}}, 0,
		storage.WriteMetadata{Actor: "ops", Reason: "purge"})
	if err != nil {
		t.Fatal(err)
	}
	h.revs["purge"] = del.Revision
	return h
}

// line renders an event as `reason kind relationship-or-schema`, with the
// entry's reason standing for its revision.
func line(ev audit.Event) string {
	what := ""
	if ev.Kind == audit.SchemaChanged {
		sign := "-"
		if ev.Schema.Added {
			sign = "+"
		}
		what = sign + ev.Schema.Kind + " " + ev.Schema.Name
	} else {
		r := ev.Relationship
		r.Expiration = nil
		what = r.String()
	}
	return fmt.Sprintf("%s %s %s", ev.Metadata.Reason, ev.Kind, what)
}

func read(t *testing.T, h *history, q audit.Query) []string {
	t.Helper()
	if q.Now.IsZero() {
		q.Now = h.now
	}
	var out []string
	for ev, err := range audit.Read(ctx, h.e, q) {
		if err != nil {
			t.Fatalf("read %+v: %v", q, err)
		}
		out = append(out, line(ev))
	}
	return out
}

func TestReadFilters(t *testing.T) {
	h := newHistory(t)
	all := []string{
		"schema schema +definition document",
		"schema schema +relation document#viewer",
		"grant created document:x#viewer@user:alice",
		"grant touched document:y#viewer@user:bob",
		"revoke deleted document:x#viewer@user:alice",
		"short touched document:z#viewer@user:carol",
		"extend touched document:z#viewer@user:carol",
		"import touched folder:f1#viewer@user:alice",
		"import touched folder:f2#viewer@group:eng#member",
		"purge deleted folder:f1#viewer@user:alice",
		"grant expired document:y#viewer@user:bob",
	}
	pick := func(idx ...int) []string {
		out := make([]string, len(idx))
		for i, j := range idx {
			out[i] = all[j]
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    audit.Query
		want []string
	}{
		{"everything", audit.Query{}, all},
		{"one resource", audit.Query{ResourceType: "document", ResourceID: "x"}, pick(2, 4)},
		{"one resource type", audit.Query{ResourceType: "folder"}, pick(7, 8, 9)},
		{"resource type includes its schema", audit.Query{ResourceType: "document", Relation: ""}, pick(0, 1, 2, 3, 4, 5, 6, 10)},
		{"relation", audit.Query{ResourceType: "document", Relation: "viewer"}, pick(2, 3, 4, 5, 6, 10)},
		{"one subject", audit.Query{SubjectType: "user", SubjectID: "alice"}, pick(2, 4, 7, 9)},
		{"subject set", audit.Query{SubjectType: "group", SubjectRelation: "member"}, pick(8)},
		{"subject without relation", audit.Query{SubjectType: "group", SubjectRelation: "..."}, nil},
		{"actor", audit.Query{Actor: "ops"}, pick(4, 9)},
		{"actor of the grant, with its expiration", audit.Query{Actor: "ci"}, pick(2, 3, 5, 6, 10)},
		{"label", audit.Query{Labels: []storage.Label{{Key: "ticket", Value: "SEC-42"}}}, pick(2, 3, 10)},
		{"two labels", audit.Query{Labels: []storage.Label{{Key: "ticket", Value: "SEC-42"}, {Key: "approver", Value: "amy"}}}, nil},
		{"kinds", audit.Query{Kinds: []audit.EventKind{audit.Deleted, audit.Expired}}, pick(4, 9, 10)},
		{"schema only", audit.Query{Kinds: []audit.EventKind{audit.SchemaChanged}}, pick(0, 1)},
		{"no expirations", audit.Query{NoExpirations: true, SubjectType: "user", SubjectID: "bob"}, pick(3)},
		{"revision range", audit.Query{MinRevision: h.revs["revoke"], MaxRevision: h.revs["extend"]}, pick(4, 5, 6)},
		{"newest first", audit.Query{NewestFirst: true, ResourceType: "document", ResourceID: "x"}, pick(4, 2)},
		{"limit", audit.Query{Limit: 3}, all[:3]},
		{"expirations up to now only", audit.Query{Now: time.Now(), SubjectType: "user", SubjectID: "bob"}, pick(3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := read(t, h, tc.q)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestReadTimeRange(t *testing.T) {
	h := newHistory(t)
	commit := func(name string) time.Time {
		t.Helper()
		var at time.Time
		for ev, err := range audit.Read(ctx, h.e, audit.Query{MinRevision: h.revs[name], MaxRevision: h.revs[name], NoExpirations: true}) {
			if err != nil {
				t.Fatal(err)
			}
			at = ev.Time
		}
		return at
	}
	if !commit("revoke").After(commit("grant")) || !commit("import").After(commit("extend")) {
		t.Fatal("commit times of successive writes are not distinct")
	}
	got := read(t, h, audit.Query{Since: commit("revoke"), Until: commit("import"), ResourceType: "document"})
	want := []string{
		"revoke deleted document:x#viewer@user:alice",
		"short touched document:z#viewer@user:carol",
		"extend touched document:z#viewer@user:carol",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// The expiration (+1h) falls in [since, since+90m), not in [since, since+30m).
	got = read(t, h, audit.Query{Since: commit("grant"), Until: commit("grant").Add(90 * time.Minute), Kinds: []audit.EventKind{audit.Expired}})
	if want := []string{"grant expired document:y#viewer@user:bob"}; !slices.Equal(got, want) {
		t.Fatalf("expirations in 90m: got %q, want %q", got, want)
	}
	if got := read(t, h, audit.Query{Since: commit("grant"), Until: commit("grant").Add(30 * time.Minute), Kinds: []audit.EventKind{audit.Expired}}); len(got) != 0 {
		t.Fatalf("expirations in 30m: got %q, want none", got)
	}
}

// TestReadPages reads every query one event at a time through cursors,
// in both orders, and compares with the unpaged answer.
func TestReadPages(t *testing.T) {
	h := newHistory(t)
	for _, q := range []audit.Query{{}, {NewestFirst: true}, {SubjectType: "user"}, {SubjectType: "user", NewestFirst: true}, {Actor: "ci", NewestFirst: true}} {
		want := read(t, h, q)
		var got []string
		q.Limit, q.Now = 1, h.now
		for range len(want) + 1 {
			var evs []audit.Event
			for ev, err := range audit.Read(ctx, h.e, q) {
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
			if len(evs) == 0 {
				break
			}
			got = append(got, line(evs[0]))
			q.After = evs[0].Cursor
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged %+v:\n got %q\nwant %q", q, got, want)
		}
	}
}

func TestReadBadQueries(t *testing.T) {
	h := newHistory(t)
	now := time.Now()
	for _, tc := range []struct {
		q     audit.Query
		field string
	}{
		{audit.Query{ResourceID: "x"}, "resource_id"},
		{audit.Query{SubjectID: "x"}, "subject_id"},
		{audit.Query{SubjectRelation: "member"}, "subject_relation"},
		{audit.Query{Since: now, Until: now}, "until"},
		{audit.Query{MinRevision: 5, MaxRevision: 4}, "to"},
		{audit.Query{Limit: -1}, "limit"},
		{audit.Query{After: "not a cursor"}, "cursor"},
		{audit.Query{Labels: []storage.Label{{Value: "x"}}}, "labels[0].key"},
		{audit.Query{Kinds: []audit.EventKind{99}}, "kinds[0]"},
	} {
		var err error
		for _, e := range audit.Read(ctx, h.e, tc.q) {
			err = e
		}
		var fe *core.FieldError
		if !errors.As(err, &fe) || fe.Path.String() != tc.field {
			t.Errorf("%+v: error %v, want one naming %s", tc.q, err, tc.field)
		}
	}
}

func TestProvenance(t *testing.T) {
	h := newHistory(t)
	ev, ok, err := audit.Provenance(ctx, h.e, rel(t, "document:z#viewer@user:carol"), h.revs["import"])
	if err != nil || !ok || ev.Metadata.Reason != "extend" || ev.Revision != h.revs["extend"] {
		t.Fatalf("provenance of carol = %+v %v %v, want the extend write", ev, ok, err)
	}
	ev, ok, err = audit.Provenance(ctx, h.e, rel(t, "document:z#viewer@user:carol"), h.revs["short"])
	if err != nil || !ok || ev.Metadata.Reason != "short" {
		t.Fatalf("provenance of carol at the short write = %+v %v %v", ev, ok, err)
	}
	ev, ok, err = audit.Provenance(ctx, h.e, rel(t, "document:x#viewer@user:alice"), h.revs["grant"])
	if err != nil || !ok || ev.Metadata.Actor != "ci" || !slices.Contains(ev.Metadata.Labels, storage.Label{Key: "ticket", Value: "SEC-42"}) {
		t.Fatalf("provenance of alice = %+v %v %v, want ci's grant with its labels", ev, ok, err)
	}
	if _, ok, err := audit.Provenance(ctx, h.e, rel(t, "document:x#viewer@user:alice"), h.revs["revoke"]); ok || err != nil {
		t.Fatalf("provenance of a deleted relationship: ok=%v err=%v", ok, err)
	}
	if _, ok, err := audit.Provenance(ctx, h.e, rel(t, "document:q#viewer@user:nobody"), h.revs["purge"]); ok || err != nil {
		t.Fatalf("provenance of an unknown relationship: ok=%v err=%v", ok, err)
	}
}

// TestReadLargeImport reads objects of a large import batch, which is
// indexed by type with a filter of its objects rather than by object.
func TestReadLargeImport(t *testing.T) {
	e := openEngine(t)
	var rels []graph.Relationship
	for i := range 500 {
		rels = append(rels, rel(t, fmt.Sprintf("document:d%d#viewer@user:u%d", i, i%50)))
	}
	_, err := e.Import(ctx, func(yield func(graph.Relationship, error) bool) {
		for _, r := range rels {
			if !yield(r, nil) {
				return
			}
		}
	}, storage.ImportOptions{BatchSize: 1000, Metadata: storage.WriteMetadata{Reason: "bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	h := &history{e: e, now: time.Now()}
	if got, want := read(t, h, audit.Query{ResourceType: "document", ResourceID: "d123"}), []string{"bulk touched document:d123#viewer@user:u23"}; !slices.Equal(got, want) {
		t.Fatalf("one imported resource: got %q, want %q", got, want)
	}
	if got := read(t, h, audit.Query{SubjectType: "user", SubjectID: "u7"}); len(got) != 10 {
		t.Fatalf("one imported subject: got %d events, want 10: %q", len(got), got)
	}
	if got := read(t, h, audit.Query{ResourceType: "document", ResourceID: "absent"}); len(got) != 0 {
		t.Fatalf("an object the import lacks: got %q", got)
	}
	ev, ok, err := audit.Provenance(ctx, e, rel(t, "document:d42#viewer@user:u42"), 10)
	if err != nil || !ok || ev.Metadata.Reason != "bulk" {
		t.Fatalf("provenance of an imported relationship = %+v %v %v", ev, ok, err)
	}
}
