package check

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

const accessTestSchema = `
definition user {}
definition group {
	relation member: user | group#member
}
definition document {
	relation viewer: user | group#member
	relation banned: user
	permission view = viewer
	permission read = viewer - banned
	permission shared = viewer & viewer
}`

// accessTestWorld is a document viewed by a group of n users, and extra.
func accessTestWorld(t *testing.T, n int, extra ...graph.Relationship) Snapshot {
	t.Helper()
	s, err := schema.Compile("access.zed", accessTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	rels := []graph.Relationship{graph.MustParseRelationship("document:doc#viewer@group:g#member")}
	for i := range n {
		rels = append(rels, graph.MustParseRelationship("group:g#member@user:u"+string(rune('a'+i))))
	}
	rels = append(rels, extra...)
	store := newTestStore(t)
	store.write(t, rels)
	return Snapshot{Schema: s, Reader: store.reader(t)}
}

// TestAccessTooLarge: who can access answers a permission whose subjects
// outgrow MaxAccessObjects a window of subjects at a time, with the rows
// of an unbounded engine, also when the windows are a few subjects and
// the sets outgrow their bound; what can access fails with
// ErrAccessTooLarge, naming the limit.
func TestAccessTooLarge(t *testing.T) {
	snap := accessTestWorld(t, 10)
	ctx := context.Background()
	small := New(Config{})
	small.bounds = accessBounds{walkNodes: 4, setEntries: 5, windowSubjects: 3}
	for _, perm := range []string{"view", "read", "shared"} {
		req := WhoRequest{Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Permissions: []string{perm}, Now: goldenNow}
		want, err := collect(func(y func(AccessRow) bool) error { return New(Config{}).WhoCanAccess(ctx, snap, req, y) })
		if err != nil || len(want) != 10 {
			t.Fatalf("who %s: %d rows, %v", perm, len(want), err)
		}
		for name, e := range map[string]*Engine{"max 3": New(Config{MaxAccessObjects: 3}), "small windows": small} {
			got, err := collect(func(y func(AccessRow) bool) error { return e.WhoCanAccess(ctx, snap, req, y) })
			if err != nil || rowsString(got) != rowsString(want) {
				t.Errorf("who %s, %s: %v\n%s\nwant\n%s", perm, name, err, rowsString(got), rowsString(want))
			}
		}
	}
	// ua views three documents and is in two groups (g, and h through g).
	more := []graph.Relationship{graph.MustParseRelationship("group:h#member@group:g#member")}
	for _, d := range []string{"d2", "d3"} {
		more = append(more, graph.MustParseRelationship("document:"+d+"#viewer@group:g#member"))
	}
	snap = accessTestWorld(t, 10, more...)
	ua := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ua"}}
	for _, c := range []struct {
		types []string
		rows  int
		err   bool
	}{
		{types: []string{"document"}, rows: 9}, // 3 documents × view, read, shared: streamed in ID order
		{types: []string{"group"}, err: true},  // groups reach themselves: looked up whole
	} {
		req := WhatRequest{Subject: ua, ResourceTypes: c.types, Now: goldenNow}
		got, err := collect(func(y func(AccessRow) bool) error {
			return New(Config{MaxAccessObjects: 1}).WhatCanAccess(ctx, snap, req, y)
		})
		if c.err {
			if !errors.Is(err, ErrAccessTooLarge) || !strings.Contains(err.Error(), "MaxAccessObjects") {
				t.Errorf("what %v: %v, want ErrAccessTooLarge", c.types, err)
			}
			continue
		}
		want, werr := collect(func(y func(AccessRow) bool) error { return New(Config{}).WhatCanAccess(ctx, snap, req, y) })
		if err != nil || werr != nil || len(want) != c.rows || rowsString(got) != rowsString(want) {
			t.Errorf("what %v: %v, %v\n%s\nwant %d rows\n%s", c.types, err, werr, rowsString(got), c.rows, rowsString(want))
		}
	}
}

// TestAccessCursorErrors: a cursor that is malformed, from another
// revision or from another query is a RequestError naming the cursor.
func TestAccessCursorErrors(t *testing.T) {
	snap := accessTestWorld(t, 2)
	ctx := context.Background()
	e := New(Config{})
	res := graph.ObjectRef{Type: "document", ID: "doc"}
	user := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ua"}}
	rev := snap.Reader.Revision()
	for _, s := range []string{"", "ac1.", "ac1.!!", "lr2.1.x", AccessCursor{Revision: rev}.Encode()} {
		if _, err := DecodeAccessCursor(s); !isCursorError(err) {
			t.Errorf("decode %q: %v", s, err)
		}
	}
	good := AccessCursor{Revision: rev, Resource: res, Permission: "view", Subject: user}
	if c, err := DecodeAccessCursor(good.Encode()); err != nil || c != good {
		t.Errorf("round trip: %v, %v", c, err)
	}
	stale := good
	stale.Revision++
	other := good
	other.Resource.ID = "other"
	otherSub := good
	otherSub.Subject.Object.ID = "ub"
	for name, run := range map[string]func() error{
		"who, stale":  func() error { return e.WhoCanAccess(ctx, snap, WhoRequest{Resource: res, After: &stale}, nil) },
		"who, other":  func() error { return e.WhoCanAccess(ctx, snap, WhoRequest{Resource: res, After: &other}, nil) },
		"what, stale": func() error { return e.WhatCanAccess(ctx, snap, WhatRequest{Subject: user, After: &stale}, nil) },
		"what, other": func() error { return e.WhatCanAccess(ctx, snap, WhatRequest{Subject: user, After: &otherSub}, nil) },
		"who, context": func() error {
			return e.WhoCanAccess(ctx, snap, WhoRequest{Resource: res, Context: map[string]any{"x": func() {}}}, nil)
		},
	} {
		err := run()
		if !errors.Is(err, ErrInvalidRequest) || (!strings.Contains(name, "context") && !isCursorError(err)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func isCursorError(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && re.Part == "cursor"
}

// TestAccessCanceled: a canceled context stops a walk.
func TestAccessCanceled(t *testing.T) {
	snap := accessTestWorld(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := New(Config{})
	err := e.WhoCanAccess(ctx, snap, WhoRequest{Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Now: goldenNow}, func(AccessRow) bool { return true })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("who: %v", err)
	}
	err = e.WhatCanAccess(ctx, snap, WhatRequest{Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ua"}}, Now: goldenNow}, func(AccessRow) bool { return true })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("what: %v", err)
	}
}

// FuzzDecodeAccessCursor: decoding never panics, and a cursor it accepts
// encodes back to itself.
func FuzzDecodeAccessCursor(f *testing.F) {
	f.Add("")
	f.Add(AccessCursor{Revision: 7, Resource: graph.ObjectRef{Type: "document", ID: "d1"}, Permission: "view",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: "eng"}, Relation: "member"}}.Encode())
	f.Add(AccessCursor{Revision: 1, Resource: graph.ObjectRef{Type: "document", ID: "d1"}, Permission: "view",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "*"}}}.Encode())
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeAccessCursor(s)
		if err != nil {
			if !isCursorError(err) {
				t.Fatalf("%q: %v is not a cursor error", s, err)
			}
			return
		}
		again, err := DecodeAccessCursor(c.Encode())
		if err != nil || again != c {
			t.Fatalf("%q: decoded %+v, which round-trips to %+v, %v", s, c, again, err)
		}
	})
}
