package reach

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

const folderSchema = `use expiration
definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation parent: folder with expiration
	relation link: folder
	relation odd: folder | folder with cav
	relation viewer: user | group#member
	relation owner: user
	permission view = viewer + owner + parent->view
	permission last = parent->last + viewer
	permission gated = (viewer + parent->gated) & owner
	permission every = viewer + parent.all(every)
	permission caveated = viewer + odd->caveated
	permission linked = viewer + link->linked + parent->linked
	permission nested = (viewer + owner) + parent->nested
	permission owned = owner + parent->owned
}
definition document {
	relation parent: folder
	relation viewer: user
	permission view = viewer + parent->view
	permission self = viewer + parent->view + parent->self
}
caveat cav(x int) { x > 1 }
`

func TestQualify(t *testing.T) {
	s, err := schema.Compile("folders.zed", folderSchema)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ, perm string
		want      bool
		why       string
	}{
		{"folder", "view", true, "a union ending in parent->view"},
		{"folder", "nested", true, "a nested union before the arrow"},
		{"folder", "linked", false, "the base (link->linked) leads back to the permission"},
		{"folder", "last", false, "the arrow is not the last branch"},
		{"folder", "gated", false, "an intersection above the arrow"},
		{"folder", "every", false, "an .all arrow"},
		{"folder", "caveated", false, "odd allows a caveat"},
		{"document", "view", false, "document's parent is a folder: the folder's view qualifies instead"},
		{"document", "self", false, "document's parent is not a document"},
	} {
		_, got := Qualify(s, c.typ, c.perm)
		if got != c.want {
			t.Errorf("Qualify(%s#%s) = %v, want %v (%s)", c.typ, c.perm, got, c.want, c.why)
		}
	}
	if got, want := ParentKeys(s), []Key{{"folder", "parent"}}; !slices.Equal(got, want) {
		t.Errorf("ParentKeys = %v, want %v", got, want)
	}
	// Only owned steps through a parent relation to itself beside
	// relations of plain subjects: view and linked also name viewer, which
	// holds group#member; gated's arrow is under an intersection, every's
	// is .all, odd allows a caveat, and document#parent leads to folders.
	if got, want := StepKeys(s), []Key{{"folder", "parent"}}; !slices.Equal(got, want) {
		t.Errorf("StepKeys = %v, want %v", got, want)
	}
}

// lineageString prints a lineage as `id:parent,parent id:...`.
func lineageString(l Lineage) string {
	var b strings.Builder
	for i, id := range l.IDs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(id + ":")
		for k, st := range l.Up[i] {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.IDs[st.To])
		}
	}
	return fmt.Sprintf("%s depth %d", b.String(), l.Depth)
}

func parent(child, p string, exp *time.Time) graph.Relationship {
	return graph.Relationship{Resource: graph.ObjectRef{Type: "folder", ID: child}, Relation: "parent",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: p}}, Expiration: exp}
}

// folderTree builds an index of folderSchema over the tree f0 ← f1 ←
// {f2 ← f3, f4}, with f3 also under f9 until soon, written at first.
func folderTree(t *testing.T) (f *fixture, first storage.Revision, soon time.Time) {
	t.Helper()
	f = newFixture(t)
	ctx := context.Background()
	s, err := schema.Compile("folders.zed", folderSchema)
	if err != nil {
		t.Fatal(err)
	}
	soon = time.Now().Add(time.Hour)
	first = f.write(storage.OpTouch, parent("f1", "f0", nil), parent("f2", "f1", nil), parent("f3", "f2", nil),
		parent("f3", "f9", &soon), parent("f4", "f1", nil))
	r, err := f.eng.SnapshotReader(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ix.Build(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	return f, first, soon
}

// TestAncestors builds and follows a folder tree: lineages follow moves,
// leave expired parents out, decline cycles, lineages over the limit and
// revisions before the last change.
func TestAncestors(t *testing.T) {
	f, first, soon := folderTree(t)
	now := time.Now().UnixNano()
	ask := func(rev storage.Revision, at int64, limit int, ids ...string) string {
		t.Helper()
		l, ok := f.ix.Ancestors(rev, "folder", "parent", ids, at, limit)
		if !ok {
			return "declined"
		}
		return lineageString(l)
	}
	for _, c := range []struct {
		ids   []string
		at    int64
		limit int
		want  string
	}{
		{[]string{"f3"}, now, 100, "f3:f2,f9 f2:f1 f9: f1:f0 f0: depth 3"},
		{[]string{"f3"}, soon.UnixNano(), 100, "f3:f2 f2:f1 f1:f0 f0: depth 3"},
		{[]string{"f1", "f3", "x"}, now, 100, "f1:f0 f3:f2,f9 x: f0: f2:f1 f9: depth 3"},
		{[]string{"f3"}, now, 4, "declined"},
		{[]string{"f0"}, now, 1, "f0: depth 0"},
	} {
		if got := ask(first, c.at, c.limit, c.ids...); got != c.want {
			t.Errorf("Ancestors(%v at %d, limit %d) = %q, want %q", c.ids, c.at, c.limit, got, c.want)
		}
	}
	// A move: f2 leaves f1 for f4, which is under f1 too.
	moved := f.write(storage.OpDelete, parent("f2", "f1", nil))
	moved2 := f.write(storage.OpTouch, parent("f2", "f4", nil))
	for _, rev := range []storage.Revision{moved, moved2} {
		ch := storage.Change{Revision: rev, CommittedAt: time.Now()}
		if rev == moved {
			ch.Relationships = []storage.RelationshipChange{{Op: storage.OpDelete, Relationship: parent("f2", "f1", nil)}}
		} else {
			ch.Relationships = []storage.RelationshipChange{{Op: storage.OpTouch, Relationship: parent("f2", "f4", nil)}}
		}
		if err := f.ix.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	now = time.Now().UnixNano()
	if got := ask(first, now, 100, "f3"); got != "declined" {
		t.Errorf("at the revision before the move: %q, want declined", got)
	}
	if got, want := ask(moved2, now, 100, "f3"), "f3:f2,f9 f2:f4 f9: f4:f1 f1:f0 f0: depth 4"; got != want {
		t.Errorf("after the move: %q, want %q", got, want)
	}
	// A cycle: f0 under f3.
	cyc := f.write(storage.OpTouch, parent("f0", "f3", nil))
	if err := f.ix.Apply(storage.Change{Revision: cyc, CommittedAt: time.Now(),
		Relationships: []storage.RelationshipChange{{Op: storage.OpTouch, Relationship: parent("f0", "f3", nil)}}}); err != nil {
		t.Fatal(err)
	}
	if got := ask(cyc, time.Now().UnixNano(), 100, "f3"); got != "declined" {
		t.Errorf("with a cycle: %q, want declined", got)
	}
	if got, want := ask(cyc, time.Now().UnixNano(), 100, "f9"), "f9: depth 0"; got != want {
		t.Errorf("outside the cycle: %q, want %q", got, want)
	}
	// folder#parent both ways.
	if st := f.ix.Stats(); st.ParentRelations != 2 || st.ParentEdges != 12 || st.AncestorHits == 0 || st.AncestorDeclines == 0 {
		t.Errorf("stats %+v: want folder#parent both ways, 12 edges, hits and declines", st)
	}
}

// TestReferrers follows a folder tree downwards, from each folder to the
// folders whose parent it is: lineages leave expired edges out, follow
// changes, and decline cycles, lineages over the limit and revisions
// before the last change.
func TestReferrers(t *testing.T) {
	f, first, soon := folderTree(t)
	ask := func(rev storage.Revision, at int64, limit int, ids ...string) string {
		t.Helper()
		l, ok := f.ix.Referrers(rev, "folder", "parent", ids, at, limit)
		if !ok {
			return "declined"
		}
		return lineageString(l)
	}
	now := time.Now().UnixNano()
	for _, c := range []struct {
		ids   []string
		at    int64
		limit int
		want  string
	}{
		{[]string{"f1"}, now, 100, "f1:f2,f4 f2:f3 f4: f3: depth 2"},
		{[]string{"f9"}, now, 100, "f9:f3 f3: depth 1"},
		{[]string{"f9"}, soon.UnixNano(), 100, "f9: depth 0"},
		{[]string{"f0"}, now, 4, "declined"},
		{[]string{"f3", "x"}, now, 100, "f3: x: depth 0"},
	} {
		if got := ask(first, c.at, c.limit, c.ids...); got != c.want {
			t.Errorf("Referrers(%v at %d, limit %d) = %q, want %q", c.ids, c.at, c.limit, got, c.want)
		}
	}
	for _, k := range []Key{{"folder", "link"}, {"document", "parent"}} {
		if _, ok := f.ix.Referrers(first, k.Type, k.Relation, []string{"f1"}, now, 100); ok {
			t.Errorf("%v, which is not kept inverted, was answered", k)
		}
	}
	// f3 moves from f2 to f4; then a cycle: f0 under f3.
	moved := f.write(storage.OpDelete, parent("f3", "f2", nil))
	moved2 := f.write(storage.OpTouch, parent("f3", "f4", nil))
	cyc := f.write(storage.OpTouch, parent("f0", "f3", nil))
	for _, ch := range []storage.Change{
		{Revision: moved, Relationships: []storage.RelationshipChange{{Op: storage.OpDelete, Relationship: parent("f3", "f2", nil)}}},
		{Revision: moved2, Relationships: []storage.RelationshipChange{{Op: storage.OpTouch, Relationship: parent("f3", "f4", nil)}}},
	} {
		ch.CommittedAt = time.Now()
		if err := f.ix.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	now = time.Now().UnixNano()
	if got := ask(first, now, 100, "f1"); got != "declined" {
		t.Errorf("at the revision before the move: %q, want declined", got)
	}
	if got, want := ask(moved2, now, 100, "f1"), "f1:f2,f4 f2: f4:f3 f3: depth 2"; got != want {
		t.Errorf("after the move: %q, want %q", got, want)
	}
	if err := f.ix.Apply(storage.Change{Revision: cyc, CommittedAt: time.Now(),
		Relationships: []storage.RelationshipChange{{Op: storage.OpTouch, Relationship: parent("f0", "f3", nil)}}}); err != nil {
		t.Fatal(err)
	}
	if got := ask(cyc, time.Now().UnixNano(), 100, "f1"); got != "declined" {
		t.Errorf("with a cycle: %q, want declined", got)
	}
}

func TestLongest(t *testing.T) {
	for _, c := range []struct {
		up   [][]Step
		want []int32
	}{
		{[][]Step{{{To: 1}}, {{To: 2}}, nil}, []int32{2, 1, 0}},
		// A diamond with a long side: 0 → 1 → 3, 0 → 2 → 4 → 3.
		{[][]Step{{{To: 1}, {To: 2}}, {{To: 3}}, {{To: 4}}, nil, {{To: 3}}}, []int32{3, 1, 2, 0, 1}},
		{[][]Step{{{To: 1}}, {{To: 0}}}, nil},
		{[][]Step{{{To: 0}}}, nil},
	} {
		got, ok := longest(c.up)
		if ok != (c.want != nil) || !slices.Equal(got, c.want) {
			t.Errorf("longest(%v) = %v %v, want %v", c.up, got, ok, c.want)
		}
	}
}
