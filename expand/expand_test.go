package expand

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/readcache"
)

// The trees of every construct are covered by check/testdata (expand
// commands); these cases cover Expand's own errors and marks.

func world(t *testing.T, src string, rels ...string) (*schema.Schema, storage.Reader) {
	t.Helper()
	st := newStore(t, src)
	return st.s, st.write(storage.OpTouch, rels...)
}

const groups = `definition user {}
definition group {
	relation member: user | group#member
}`

func TestExpand(t *testing.T) {
	s, rd := world(t, groups,
		"group:eng#member@group:eng#member",
		"group:eng#member@group:ops#member",
		"group:ops#member@user:ann",
		"group:ops#member@user:bob[expiration:2030-01-01T00:00:00Z]",
		"group:ops#member@user:old[expiration:2020-01-01T00:00:00Z]")
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eng := graph.ObjectRef{Type: "group", ID: "eng"}
	for _, tc := range []struct {
		name  string
		obj   graph.ObjectRef
		rel   string
		depth int
		want  string
		err   error
	}{
		{"tree with cycle, expiration and expired leaf", eng, "member", 50, `group:eng#member
  group:eng#member
    group:eng#member (see above)
  group:ops#member
    group:ops#member
      user:ann
      user:bob [expires 2030-01-01T00:00:00Z]`, nil},
		{"depth bound", eng, "member", 1, "", ErrMaxDepth},
		{"unknown relation", eng, "viewer", 50, "", ErrUnknown},
		{"unknown type", graph.ObjectRef{Type: "team", ID: "x"}, "member", 50, "", ErrUnknown},
	} {
		n, err := Expand(ctx, s, rd, tc.obj, tc.rel, Options{MaxDepth: tc.depth, Now: now})
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := n.String(); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
		if strings.Contains(n.String(), "user:old") {
			t.Errorf("%s: expired relationship shown", tc.name)
		}
	}
}

// TestMaxNodes: MaxNodes counts every node of the tree (expressions,
// arrows, relations and subject leaves): a tree of n nodes expands with
// MaxNodes n and fails with ErrTooLarge at n-1.
func TestMaxNodes(t *testing.T) {
	s, rd := world(t, `definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation viewer: user
	permission view = viewer
}
definition doc {
	relation parent: folder
	relation viewer: user | group#member
	relation banned: user
	permission view = (viewer + parent->view) - banned
}`,
		"doc:d#viewer@user:ann", "doc:d#viewer@group:eng#member", "group:eng#member@user:bob",
		"group:eng#member@user:cat", "doc:d#parent@folder:f", "folder:f#viewer@user:dan", "doc:d#banned@user:eve")
	ctx := context.Background()
	d := graph.ObjectRef{Type: "doc", ID: "d"}
	tree, err := Expand(ctx, s, rd, d, "view", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var count func(*Node) int
	count = func(n *Node) int {
		c := 1
		for _, ch := range n.Children {
			c += count(ch)
		}
		return c
	}
	n := count(tree)
	if n < 10 {
		t.Fatalf("tree of %d nodes:\n%s", n, tree)
	}
	// The store's reader streams rows; the read cache's hands back whole
	// results within the room left. Both count alike and build one tree.
	cached := readcache.New(readcache.Config{}).Reader(rd)
	for name, r := range map[string]storage.Reader{"store": rd, "read cache": cached} {
		got, err := Expand(ctx, s, r, d, "view", Options{MaxNodes: n})
		if err != nil {
			t.Errorf("%s: MaxNodes %d, a tree of %d nodes: %v", name, n, n, err)
		} else if got.String() != tree.String() {
			t.Errorf("%s: tree\n%s\nwant\n%s", name, got, tree)
		}
		for limit := 1; limit < n; limit++ {
			_, err = Expand(ctx, s, r, d, "view", Options{MaxNodes: limit})
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d nodes", limit)) {
				t.Errorf("%s: MaxNodes %d, a tree of %d nodes: %v, want ErrTooLarge naming the limit", name, limit, n, err)
			}
		}
	}
}

// TestShallow: a shallow tree leaves subject sets unexpanded, repeats a
// relation it reaches twice in full, and marks only a cycle as seen.
func TestShallow(t *testing.T) {
	s, rd := world(t, `definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation parent: folder
	relation viewer: user
	permission view = viewer + parent->view
	permission all_view = parent.all(view)
}
definition doc {
	relation viewer: user | group#member
	permission edit = viewer
	permission view = viewer + edit
}`,
		"doc:d#viewer@user:ann", "doc:d#viewer@group:eng#member", "group:eng#member@user:bob",
		"folder:a#parent@folder:b", "folder:b#parent@folder:a", "folder:b#viewer@user:cat")
	ctx := context.Background()
	for _, tc := range []struct {
		obj  graph.ObjectRef
		perm string
		want string
	}{
		{graph.ObjectRef{Type: "doc", ID: "d"}, "view", `doc:d#view
  union
    doc:d#viewer
      group:eng#member
      user:ann
    doc:d#edit
      doc:d#viewer
        group:eng#member
        user:ann`},
		{graph.ObjectRef{Type: "folder", ID: "a"}, "view", `folder:a#view
  union
    folder:a#viewer
    parent->view
      folder:b
        folder:b#view
          union
            folder:b#viewer
              user:cat
            parent->view
              folder:a
                folder:a#view (see above)`},
	} {
		tree, err := Expand(ctx, s, rd, tc.obj, tc.perm, Options{Shallow: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := tree.String(); got != tc.want {
			t.Errorf("%s#%s:\n%s\nwant:\n%s", tc.obj, tc.perm, got, tc.want)
		}
	}
	tree, err := Expand(ctx, s, rd, graph.ObjectRef{Type: "folder", ID: "a"}, "all_view", Options{Shallow: true})
	if err != nil {
		t.Fatal(err)
	}
	if arrow := tree.Children[0]; arrow.Op != OpArrow || !arrow.All {
		t.Errorf("parent.all(view): %+v", arrow)
	}
}

// TestDisallowedSubjectSet: a relationship to a subject set its relation
// does not allow (written before the schema changed) is shown as a leaf
// and not expanded, as a check does not follow it.
func TestDisallowedSubjectSet(t *testing.T) {
	s, rd := world(t, `definition user {}
definition group {
	relation member: user
	relation owner: user
}
definition doc {
	relation viewer: user | group#member
}`,
		"doc:d#viewer@group:eng#member", "doc:d#viewer@group:eng#owner",
		"group:eng#member@user:ann", "group:eng#owner@user:bob")
	want := `doc:d#viewer
  group:eng#member
    group:eng#member
      user:ann
  group:eng#owner`
	for name, r := range map[string]storage.Reader{"store": rd, "read cache": readcache.New(readcache.Config{}).Reader(rd)} {
		n, err := Expand(context.Background(), s, r, graph.ObjectRef{Type: "doc", ID: "d"}, "viewer", Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := n.String(); got != want {
			t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
		}
	}
}

// TestArrowTargetsReadTogether: counting a tree, the relation an arrow
// reaches on each object of its tupleset is read with one query through
// the read cache, and the tree is the one read object by object.
func TestArrowTargetsReadTogether(t *testing.T) {
	s, rd := world(t, `definition agent {}
definition user {
	relation delegate: agent
}
definition team {
	relation member: user
	permission delegate = member->delegate
}`,
		"team:t#member@user:u1", "team:t#member@user:u2", "team:t#member@user:u3", "team:t#member@user:u4",
		"user:u2#delegate@agent:a", "user:u4#delegate@agent:b")
	ctx := context.Background()
	team := graph.ObjectRef{Type: "team", ID: "t"}
	want, err := Expand(ctx, s, rd, team, "delegate", Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := &countingReader{Reader: rd}
	got, err := Expand(ctx, s, readcache.New(readcache.Config{}).Reader(store), team, "delegate", Options{})
	if err != nil || got.String() != want.String() {
		t.Fatalf("through the read cache: %v\n%s\nwant\n%s", err, got, want)
	}
	// team:t#member, then the four members' delegates at once.
	if store.queries != 2 {
		t.Errorf("%d queries, want 2", store.queries)
	}
	// The members' delegates read together are not looked up again, one
	// by one: the only single read is team:t#member's.
	cache := &countingSlices{cachedReader: readcache.New(readcache.Config{}).Reader(rd).(cachedReader)}
	if got, err = Expand(ctx, s, cache, team, "delegate", Options{}); err != nil || got.String() != want.String() {
		t.Fatalf("counting the read cache's reads: %v\n%s\nwant\n%s", err, got, want)
	}
	if cache.slices != 1 || cache.objects != 1 {
		t.Errorf("%d reads of one object#relation and %d of many, want 1 and 1", cache.slices, cache.objects)
	}
	// Under every node limit, through the read cache (whose reads of
	// many objects the limit cuts) as reading the store row by row.
	for limit := 1; limit <= 12; limit++ {
		fromStore, errStore := Expand(ctx, s, rd, team, "delegate", Options{MaxNodes: limit})
		fromCache, errCache := Expand(ctx, s, readcache.New(readcache.Config{}).Reader(rd), team, "delegate", Options{MaxNodes: limit})
		if errors.Is(errStore, ErrTooLarge) != errors.Is(errCache, ErrTooLarge) || (errStore == nil) != (errCache == nil) ||
			errStore == nil && fromStore.String() != fromCache.String() {
			t.Errorf("MaxNodes %d: store %v, %v; read cache %v, %v", limit, fromStore, errStore, fromCache, errCache)
		}
	}
}

// cachedReader is the read cache's reader as Expand uses it.
type cachedReader interface {
	storage.Reader
	sliceReader
	relationObjectReader
}

// countingSlices counts a cachedReader's reads of one object#relation
// and of many.
type countingSlices struct {
	cachedReader
	slices, objects int
}

func (c *countingSlices) QueryRelationshipSliceUpTo(ctx context.Context, f storage.Filter, opts storage.QueryOptions, max int) ([]graph.Relationship, bool, error) {
	c.slices++
	return c.cachedReader.QueryRelationshipSliceUpTo(ctx, f, opts, max)
}

func (c *countingSlices) QueryRelationObjectsUpTo(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions, max int) ([][]graph.Relationship, error) {
	c.objects++
	return c.cachedReader.QueryRelationObjectsUpTo(ctx, typ, rel, ids, opts, max)
}
