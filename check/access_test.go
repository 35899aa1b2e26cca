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
}`

// accessTestWorld is a document viewed by a group of n users.
func accessTestWorld(t *testing.T, n int) Snapshot {
	t.Helper()
	s, err := schema.Compile("access.zed", accessTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	rels := []graph.Relationship{graph.MustParseRelationship("document:doc#viewer@group:g#member")}
	for i := range n {
		rels = append(rels, graph.MustParseRelationship("group:g#member@user:u"+string(rune('a'+i))))
	}
	store := newTestStore(t)
	store.write(t, rels)
	return Snapshot{Schema: s, Reader: store.reader(t)}
}

// TestAccessTooLarge: a walk (view) and a lookup (read) that outgrow
// MaxAccessObjects fail with ErrAccessTooLarge, naming the limit.
func TestAccessTooLarge(t *testing.T) {
	snap := accessTestWorld(t, 10)
	ctx := context.Background()
	for _, perm := range []string{"view", "read"} {
		for _, max := range []int{3, 100} {
			e := New(Config{MaxAccessObjects: max})
			n := 0
			err := e.WhoCanAccess(ctx, snap, WhoRequest{Resource: graph.ObjectRef{Type: "document", ID: "doc"}, Permissions: []string{perm}, Now: goldenNow},
				func(AccessRow) bool { n++; return true })
			if max == 3 && (!errors.Is(err, ErrAccessTooLarge) || !strings.Contains(err.Error(), "MaxAccessObjects")) {
				t.Errorf("who %s, max %d: %v", perm, max, err)
			}
			if max == 100 && (err != nil || n != 10) {
				t.Errorf("who %s, max %d: %d rows, %v", perm, max, n, err)
			}
		}
	}
	e := New(Config{MaxAccessObjects: 1})
	err := e.WhatCanAccess(ctx, snap, WhatRequest{Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ua"}}, Now: goldenNow},
		func(AccessRow) bool { return true })
	if !errors.Is(err, ErrAccessTooLarge) {
		t.Errorf("what: %v", err)
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
