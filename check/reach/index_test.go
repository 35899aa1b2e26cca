package reach

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

const groupSchema = `definition user {}
definition group {
	relation member: user | group#member
	relation admin: user | group#admin
	relation owner: user with cav | group#owner
}
definition doc {
	relation viewer: user | group#member
}
caveat cav(x int) { x > 1 }
`

func TestQualifies(t *testing.T) {
	s, err := schema.Compile("groups.zed", groupSchema)
	if err != nil {
		t.Fatal(err)
	}
	got := Keys(s)
	want := []Key{{"group", "member"}, {"group", "admin"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Keys = %v, want %v (owner allows a caveat, doc#viewer nests another relation)", got, want)
	}
}

// fixture is a store with the group schema and an index built on it.
type fixture struct {
	t   *testing.T
	eng *pebble.Engine
	s   *schema.Schema
	ix  *Index
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	eng, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	s, err := schema.Compile("groups.zed", groupSchema)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, eng: eng, s: s, ix: New(Options{})}
}

func member(group, sub string) graph.Relationship {
	r, err := graph.ParseRelationship("group:" + group + "#member@" + sub)
	if err != nil {
		panic(err)
	}
	return r
}

func (f *fixture) write(op storage.Op, rels ...graph.Relationship) storage.Revision {
	f.t.Helper()
	var muts []storage.Mutation
	for _, r := range rels {
		muts = append(muts, storage.Mutation{Op: op, Relationship: r})
	}
	rev, err := f.eng.Write(context.Background(), storage.WriteRequest{Mutations: muts})
	if err != nil {
		f.t.Fatal(err)
	}
	return rev
}

func (f *fixture) build() {
	f.t.Helper()
	ctx := context.Background()
	rev, err := f.eng.HeadRevision(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.eng.SnapshotReader(ctx, rev)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.ix.Build(ctx, f.s, r); err != nil {
		f.t.Fatal(err)
	}
}

// catchUp applies every change after the index's revision.
func (f *fixture) catchUp() {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	from, _ := f.ix.Revision()
	head, err := f.eng.HeadRevision(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for ch, err := range f.eng.Watch(ctx, from) {
		if err != nil {
			f.t.Fatal(err)
		}
		if err := f.ix.Apply(ch); err != nil {
			f.t.Fatal(err)
		}
		if ch.Revision >= head {
			return
		}
	}
}

// holds asks the index whether group g's member holds user u at rev and
// now: "decline", or the level and whether until is Never.
func (f *fixture) holds(rev storage.Revision, now time.Time, u, g string) string {
	of, ok := f.ix.Holders(rev, "group", "member", graph.ObjectRef{Type: "user", ID: u}, now.UnixNano())
	if !ok {
		return "decline"
	}
	lv, until, in := of(g)
	switch {
	case !in:
		return "no"
	case until == Never:
		return "level " + string(rune('0'+lv))
	}
	return "level " + string(rune('0'+lv)) + " until " + time.Unix(0, until).UTC().Format(time.TimeOnly)
}

func TestHolders(t *testing.T) {
	f := newFixture(t)
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	soon, later := now.Add(time.Hour), now.Add(2*time.Hour)
	expiring := func(r graph.Relationship, at time.Time) graph.Relationship { r.Expiration = &at; return r }
	// a ⊇ b ⊇ c ⊇ alice; a ⊇ c directly too, until soon; d ⊇ c until later.
	r1 := f.write(storage.OpTouch, member("a", "group:b#member"), member("b", "group:c#member"), member("c", "user:alice"),
		expiring(member("a", "group:c#member"), soon), expiring(member("d", "group:c#member"), later))
	f.build()
	for _, c := range []struct {
		at   time.Time
		g    string
		want string
	}{
		{now, "c", "level 1"},
		{now, "b", "level 2"},
		{now, "a", "level 2 until 13:00:00"}, // the shortest chain is the expiring one
		{now, "d", "level 2 until 14:00:00"},
		{now, "zz", "no"},
		{soon, "a", "decline"}, // its shortest chain has expired: a longer one holds
	} {
		if got := f.holds(r1, c.at, "alice", c.g); got != c.want {
			t.Errorf("at %s, alice in %s: %s, want %s", c.at.Format(time.TimeOnly), c.g, got, c.want)
		}
	}
	if got := f.holds(r1, now, "bob", "a"); got != "no" {
		t.Errorf("unknown subject: %s, want no", got)
	}
	if got := f.holds(r1-1, now, "alice", "c"); got != "decline" {
		t.Errorf("a revision before the build: %s, want decline", got)
	}

	// A change to the relation: the old revision is no longer answered,
	// the new one is once applied.
	r2 := f.write(storage.OpDelete, member("b", "group:c#member"))
	if got := f.holds(r2, now, "alice", "b"); got != "decline" {
		t.Errorf("a revision not applied yet: %s, want decline", got)
	}
	f.catchUp()
	if got := f.holds(r2, now, "alice", "b"); got != "no" {
		t.Errorf("after the delete, alice in b: %s, want no", got)
	}
	if got := f.holds(r1, now, "alice", "b"); got != "decline" {
		t.Errorf("a revision before the last change: %s, want decline", got)
	}
	// A change to another relation leaves group#member answering.
	r3 := f.write(storage.OpTouch, graph.Relationship{Resource: graph.ObjectRef{Type: "group", ID: "a"}, Relation: "admin",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "bob"}}})
	f.catchUp()
	if got := f.holds(r2, now, "alice", "c"); got != "level 1" {
		t.Errorf("after a change to another relation, at the revision before it: %s, want level 1", got)
	}
	if got := f.holds(r3, now, "alice", "a"); got != "level 2 until 13:00:00" {
		t.Errorf("alice in a at %d: %s", r3, got)
	}
	// Nesting a group under c makes its members members of c's holders.
	f.write(storage.OpTouch, member("c", "group:e#member"), member("e", "user:carol"))
	f.catchUp()
	r4, _ := f.ix.Revision()
	if got := f.holds(r4, now, "carol", "d"); got != "level 3 until 14:00:00" {
		t.Errorf("carol in d: %s", got)
	}
	// A caveated relationship (old data) makes the relation decline.
	cav := member("a", "user:carol")
	cav.Caveat = &graph.Caveat{Name: "cav"}
	f.write(storage.OpTouch, cav)
	f.catchUp()
	r5, _ := f.ix.Revision()
	if got := f.holds(r5, now, "carol", "c"); got != "decline" {
		t.Errorf("with a caveated relationship stored: %s, want decline", got)
	}
	f.write(storage.OpDelete, cav)
	f.catchUp()
	r6, _ := f.ix.Revision()
	if got := f.holds(r6, now, "carol", "c"); got != "level 2" {
		t.Errorf("after the caveated relationship is deleted: %s, want level 2", got)
	}
	if st := f.ix.Stats(); st.Relations != 2 || st.Edges != 7 || st.Bytes <= 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestApplySchemaChange: a change carrying a schema is refused, and the
// index keeps answering for the revisions before it.
func TestApplySchemaChange(t *testing.T) {
	f := newFixture(t)
	rev := f.write(storage.OpTouch, member("a", "user:alice"))
	f.build()
	err := f.ix.Apply(storage.Change{Revision: rev + 1, SchemaChanged: true})
	if err != ErrSchemaChanged {
		t.Fatalf("Apply(schema change) = %v, want ErrSchemaChanged", err)
	}
	if got := f.holds(rev, time.Now(), "alice", "a"); got != "level 1" {
		t.Errorf("before the schema change: %s, want level 1", got)
	}
	if got := f.holds(rev+1, time.Now(), "alice", "a"); got != "decline" {
		t.Errorf("at the schema change: %s, want decline", got)
	}
}

// TestMaxBytes: an index that would outgrow its limit, at a build or at
// a change, empties itself and declines everything.
func TestMaxBytes(t *testing.T) {
	f := newFixture(t)
	rev := f.write(storage.OpTouch, member("a", "user:alice"))
	f.build()
	size := f.ix.Stats().Bytes

	small := newFixture(t)
	small.eng, small.ix = f.eng, New(Options{MaxBytes: int64(size - 1)})
	ctx := context.Background()
	r, err := f.eng.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	if err := small.ix.Build(ctx, f.s, r); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Build over the limit: %v, want ErrTooLarge", err)
	}
	if got := small.holds(rev, time.Now(), "alice", "a"); got != "decline" {
		t.Errorf("after an oversized build: %s, want decline", got)
	}

	fits := newFixture(t)
	fits.eng, fits.ix = f.eng, New(Options{MaxBytes: int64(size)})
	fits.build()
	if got := fits.holds(rev, time.Now(), "alice", "a"); got != "level 1" {
		t.Errorf("at the limit: %s, want level 1", got)
	}
	f.write(storage.OpTouch, member("b", "user:bob"), member("c", "group:b#member"))
	ch := storage.Change{}
	for c, err := range f.eng.Watch(ctx, rev) {
		if err != nil {
			t.Fatal(err)
		}
		ch = c
		break
	}
	if err := fits.ix.Apply(ch); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Apply over the limit: %v, want ErrTooLarge", err)
	}
	if got := fits.holds(rev, time.Now(), "alice", "a"); got != "decline" {
		t.Errorf("after an oversized change: %s, want decline", got)
	}
}
