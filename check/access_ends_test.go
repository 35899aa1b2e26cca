package check

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	"github.com/pembadb/pemba/schema"
)

const endsTestSchema = `
use expiration
definition user {}
definition group {
	relation member: user
}
caveat on_shift(shift bool) { shift }
definition document {
	relation viewer: group#member with expiration
	relation shift_viewer: group#member with on_shift and expiration
	relation banned: user with expiration
	permission view = viewer
	permission read = viewer - banned
	permission shift_read = shift_viewer - banned
}`

// TestEndsAtManyExpirations: user u views the document through n groups
// whose grants expire a day apart, so the access ends with the last. View
// and read hold while any group's grant does, so one step finds the end.
// Shift_read's grants are conditional (no context is given), a
// conditional union may change with any of its sides' expirations, and
// shift_read subtracts an expiring relation, so it is stepped through
// expiration by expiration and the limit applies.
func TestEndsAtManyExpirations(t *testing.T) {
	s, err := schema.Compile("ends.zed", endsTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * MaxEndsAtSteps
	var rels []graph.Relationship
	for i := range n {
		g := "g" + strconv.Itoa(i)
		until := goldenNow.Add(time.Duration(i+1) * 24 * time.Hour)
		rels = append(rels,
			graph.Relationship{Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Relation: "viewer",
				Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: g}, Relation: "member"}, Expiration: &until},
			graph.Relationship{Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Relation: "shift_viewer",
				Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: g}, Relation: "member"}, Expiration: &until,
				Caveat: &graph.Caveat{Name: "on_shift"}},
			graph.MustParseRelationship("group:"+g+"#member@user:u"))
	}
	store := newTestStore(t)
	store.write(t, rels)
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	want := goldenNow.Add(n * 24 * time.Hour)
	for _, cfg := range []Config{{}, {CacheEntries: -1, ReadCacheBytes: -1}} {
		e := New(cfg)
		req := Request{Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Permission: "view",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u"}}, Now: goldenNow}
		ends, granted, err := e.EndsAt(context.Background(), snap, req)
		if err != nil || !granted || !ends.Equal(want) {
			t.Errorf("view: ends %v, granted %v, %v; want %v", ends, granted, err, want)
		}
		req.Permission = "read"
		ends, granted, err = e.EndsAt(context.Background(), snap, req)
		if err != nil || !granted || !ends.Equal(want) {
			t.Errorf("read: ends %v, granted %v, %v; want %v", ends, granted, err, want)
		}
		req.Permission = "shift_read"
		_, _, err = e.EndsAt(context.Background(), snap, req)
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("shift_read: want the MaxEndsAtSteps error, got %v", err)
		}
	}
}

// TestShrinksOverTime: a permission shrinks over time unless an expiring
// relation is subtracted (at any depth) or is an all-arrow's tupleset.
func TestShrinksOverTime(t *testing.T) {
	s, err := schema.Compile("ends.zed", endsTestSchema+`
definition folder {
	relation doc: document with expiration
	relation banned: user
	permission all_view = doc.all(view)
	permission any_view = doc->view
	permission not_read = any_view - doc->read
	permission fine = doc->view - banned
}`)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.New("identity-platform", dataset.Options{Scale: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := schema.Compile("identity_platform.zed", d.Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s        *schema.Schema
		typ, rel string
		want     bool
	}{
		{s, "document", "view", true},
		{s, "document", "read", false},
		{s, "document", "banned", true},
		{s, "folder", "all_view", false},
		{s, "folder", "any_view", true},
		{s, "folder", "not_read", false}, // the subtracted arrow's tupleset expires
		{s, "folder", "fine", true},
		{ip, "repository", "read", true},
		{ip, "cluster", "write", true},
		{ip, "secret", "read", true},
	} {
		if got := shrinksOverTime(c.s, c.typ, c.rel); got != c.want {
			t.Errorf("%s#%s: got %v, want %v", c.typ, c.rel, got, c.want)
		}
	}
}
