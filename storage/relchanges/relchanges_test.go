package relchanges

import (
	"context"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// change is a revision that touched the given relationships.
func change(rev storage.Revision, rels ...string) storage.Change {
	ch := storage.Change{Revision: rev}
	for _, r := range rels {
		ch.Relationships = append(ch.Relationships, storage.RelationshipChange{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(r)})
	}
	return ch
}

func TestUnchanged(t *testing.T) {
	var tr Tracker
	if tr.Unchanged(1, 2, "group", "member") {
		t.Fatal("a tracker that never started answered unchanged")
	}
	if !tr.Unchanged(7, 7, "group", "member") {
		t.Fatal("a revision is unchanged from itself")
	}
	tr.Start(10)
	type question struct {
		from, to      storage.Revision
		typ, relation string
		want          bool
	}
	for _, step := range []struct {
		ch   storage.Change
		asks []question
	}{
		{change(11, "document:d#viewer@user:a"), []question{
			{10, 10, "group", "member", true},
			{10, 11, "group", "member", true},
			{11, 10, "group", "member", true}, // either order
			{10, 11, "document", "viewer", false},
			{10, 11, "document", "owner", true},
			{10, 11, "document", "", false},    // every relation of document
			{10, 11, "", "", false},            // everything
			{10, 12, "group", "member", false}, // not delivered yet
			{9, 10, "group", "member", false},  // before following began
		}},
		{change(12, "group:g#member@user:b", "document:d#owner@user:c"), []question{
			{10, 12, "group", "member", false},
			{11, 12, "group", "member", false},
			{11, 12, "document", "viewer", true},
			{11, 12, "document", "", false},
			// Only the newest change is kept: a relation changed after
			// the later revision counts as changed too.
			{10, 11, "group", "member", false},
		}},
		{storage.Change{Revision: 13}, []question{ // changed no relationship
			{12, 13, "", "", true},
			{12, 13, "document", "", true},
			{11, 13, "", "viewer", false}, // no type: everything
		}},
		{storage.Change{Revision: 14, SchemaChanged: true}, []question{
			{13, 14, "tier", "cleared", false}, // a schema write changes everything
			{14, 14, "tier", "cleared", true},
		}},
		{change(15, "folder:f#parent@folder:root"), []question{
			{14, 15, "tier", "cleared", true},
			{14, 15, "folder", "parent", false},
			{14, 16, "tier", "cleared", false},
		}},
	} {
		if err := tr.Apply(step.ch); err != nil {
			t.Fatal(err)
		}
		for _, q := range step.asks {
			if got := tr.Unchanged(q.from, q.to, q.typ, q.relation); got != q.want {
				t.Errorf("after revision %d: Unchanged(%d, %d, %q, %q) = %v, want %v", step.ch.Revision, q.from, q.to, q.typ, q.relation, got, q.want)
			}
		}
	}
	if err := tr.Apply(change(12, "tier:t#cleared@user:a")); err != nil || !tr.Unchanged(14, 15, "tier", "cleared") {
		t.Errorf("an old revision applied again changed the record (err %v)", err)
	}
	tr.Stop()
	if tr.Unchanged(14, 15, "tier", "cleared") {
		t.Error("a stopped tracker answered unchanged")
	}
	if err := tr.Apply(change(16)); err == nil {
		t.Error("a stopped tracker applied a change")
	}
	tr.Start(20)
	if tr.Unchanged(15, 20, "tier", "cleared") {
		t.Error("a restarted tracker answered for revisions before its start")
	}
	if !tr.Unchanged(20, 20, "tier", "cleared") {
		t.Error("a restarted tracker refused its start revision")
	}
}

// TestUnchangedIn: a write to one object's relation leaves the other
// objects of that relation unchanged, on the resource side and on the
// subject side, while the tracker remembers the objects of every change in
// between; past that it answers for the relation.
func TestUnchangedIn(t *testing.T) {
	var tr Tracker
	tr.Start(10)
	res := func(typ, rel, id string) Scope { return Scope{Type: typ, Relation: rel, ID: id} }
	subj := func(typ, rel, subjectType, id string) Scope {
		return Scope{Type: typ, Relation: rel, SubjectType: subjectType, ID: id}
	}
	type question struct {
		from, to storage.Revision
		scope    Scope
		want     bool
	}
	for _, step := range []struct {
		ch   storage.Change
		asks []question
	}{
		{change(11, "dataset:d1#reader@user:a"), []question{
			{10, 11, res("dataset", "reader", "d1"), false},
			{10, 11, res("dataset", "reader", "d2"), true},
			{11, 10, res("dataset", "reader", "d2"), true}, // either order
			{10, 11, res("dataset", "", "d1"), false},      // every relation of d1
			{10, 11, res("dataset", "", "d2"), true},
			{10, 11, res("dataset", "owner", "d1"), true}, // the relation's own record
			{10, 11, subj("dataset", "reader", "user", "a"), false},
			{10, 11, subj("dataset", "reader", "user", "b"), true},
			{10, 11, subj("dataset", "", "user", "a"), false},
			{10, 11, subj("dataset", "reader", "group", "a"), true}, // another type's ID a
			{10, 11, res("dataset", "reader", ""), false},           // the whole relation
			{10, 11, res("", "", "d2"), false},                      // no type: everything
			{10, 12, res("dataset", "reader", "d2"), false},         // not delivered yet
			{9, 10, res("dataset", "reader", "d2"), false},          // before following began
		}},
		{change(12, "dataset:d2#reader@group:eng#member"), []question{
			{10, 12, res("dataset", "reader", "d2"), false},
			{11, 12, res("dataset", "reader", "d1"), true},
			{10, 12, res("dataset", "reader", "d1"), false},
			{11, 12, subj("dataset", "reader", "group", "eng"), false},
			{11, 12, subj("dataset", "reader", "user", "a"), true},
		}},
		{storage.Change{Revision: 13, SchemaChanged: true}, []question{
			{12, 13, res("dataset", "reader", "d3"), false}, // a schema write changes everything
		}},
	} {
		if err := tr.Apply(step.ch); err != nil {
			t.Fatal(err)
		}
		for _, q := range step.asks {
			if got := tr.UnchangedIn(q.from, q.to, q.scope); got != q.want {
				t.Errorf("after revision %d: UnchangedIn(%d, %d, %+v) = %v, want %v", step.ch.Revision, q.from, q.to, q.scope, got, q.want)
			}
		}
	}

	// Past the window of remembered objects the relation answers: d1 and
	// d2 were written within it at 14 and 15, and objectWindow/4 more
	// relationship changes push 14's records out of it.
	for rev, id := range map[storage.Revision]string{14: "d1", 15: "d2"} {
		if err := tr.Apply(change(rev, "dataset:"+id+"#reader@user:c")); err != nil {
			t.Fatal(err)
		}
	}
	if !tr.UnchangedIn(14, 15, res("dataset", "reader", "d1")) || tr.UnchangedIn(14, 15, res("dataset", "reader", "d2")) {
		t.Fatal("objects within the window answered for their relation")
	}
	rev := storage.Revision(16)
	for i := 0; i < objectWindow/4; i, rev = i+1, rev+1 {
		if err := tr.Apply(change(rev, "document:x#viewer@user:u")); err != nil {
			t.Fatal(err)
		}
	}
	if tr.UnchangedIn(14, rev-1, res("dataset", "reader", "d3")) {
		t.Error("a revision whose objects were forgotten answered for an object")
	}
	if !tr.UnchangedIn(15, rev-1, res("dataset", "reader", "d1")) {
		t.Error("the revisions still remembered did not answer for an object")
	}
	// A change too large to record object by object starts the records over.
	big := change(rev, "dataset:d1#reader@user:a")
	for len(big.Relationships) <= objectWindow/4 {
		big.Relationships = append(big.Relationships, big.Relationships[0])
	}
	if err := tr.Apply(big); err != nil {
		t.Fatal(err)
	}
	if tr.UnchangedIn(rev-1, rev, res("dataset", "reader", "d2")) {
		t.Error("a change too large to record answered for an object")
	}
	if err := tr.Apply(change(rev+1, "dataset:d2#reader@user:a")); err != nil {
		t.Fatal(err)
	}
	if !tr.UnchangedIn(rev, rev+1, res("dataset", "reader", "d1")) || tr.UnchangedIn(rev, rev+1, res("dataset", "reader", "d2")) {
		t.Error("after a large change, the next change's objects were not recorded")
	}
	if n := len(tr.recorded) - tr.recordedHead; n > objectWindow {
		t.Errorf("%d object records kept, more than the window of %d", n, objectWindow)
	}
	tr.Start(rev + 5)
	if len(tr.objects) != 0 {
		t.Errorf("a restarted tracker kept %d object records", len(tr.objects))
	}
}

// TestFollow follows a real engine's stream: writes to one relation leave
// the others unchanged, and a revision the stream has not delivered is
// never called unchanged.
func TestFollow(t *testing.T) {
	eng, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	write := func(rel string) storage.Revision {
		t.Helper()
		rev, err := eng.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(rel)}}})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	first := write("group:g#member@user:a")
	var tr Tracker
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Follow(ctx, eng, func(err error) { t.Errorf("follow: %v", err) })
	}()
	waitApplied(t, &tr, first)
	second := write("document:d#viewer@user:a")
	if tr.Unchanged(first, second+1, "group", "member") {
		t.Error("a revision not yet committed was called unchanged")
	}
	waitApplied(t, &tr, second)
	if !tr.Unchanged(first, second, "group", "member") {
		t.Error("a write to document#viewer changed group#member")
	}
	if tr.Unchanged(first, second, "document", "viewer") {
		t.Error("a write to document#viewer left it unchanged")
	}
	cancel()
	<-done
	if _, following := tr.Applied(); following {
		t.Error("the tracker still follows after its context ended")
	}
}

// waitApplied waits until tr has applied rev.
func waitApplied(t *testing.T, tr *Tracker, rev storage.Revision) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Wait(ctx, rev); err != nil {
		t.Fatal(err)
	}
}

// TestWait: Wait returns once the revision is applied, and with the
// context's error when it never is.
func TestWait(t *testing.T) {
	var tr Tracker
	tr.Start(1)
	done := make(chan error, 1)
	go func() { done <- tr.Wait(context.Background(), 3) }()
	for _, rev := range []storage.Revision{2, 3} {
		if err := tr.Apply(change(rev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("wait for an applied revision: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := tr.Wait(ctx, 4); err == nil {
		t.Fatal("wait for a revision never applied returned without an error")
	}
}
