package access_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/access"
	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

var ctx = context.Background()

const worldSchema = `use expiration

definition user {}
definition group {
  relation member: user | user with expiration
}
definition doc {
  relation viewer: user | user with expiration | group#member | group#member with expiration
  permission view = viewer
}`

// world is an embedded datastore with worldSchema and a Source over it.
type world struct {
	engine storage.Engine
	src    access.Source
}

func newWorld(tb testing.TB, dir string) *world {
	tb.Helper()
	opts := pebble.Options{InMemory: dir == "", Dir: dir, GCInterval: -1, NoSync: true}
	e, err := pebble.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	if _, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: worldSchema}}); err != nil {
		tb.Fatal(err)
	}
	schemas := core.NewSchemas()
	snapshot := func(ctx context.Context, rev storage.Revision) (check.Snapshot, error) {
		r, sch, err := schemas.At(ctx, e, rev)
		if err != nil {
			return check.Snapshot{}, err
		}
		return check.Snapshot{Schema: sch.Schema, Reader: r}, nil
	}
	return &world{engine: e, src: access.Source{Engine: e, Checker: check.New(check.Config{}), Snapshot: snapshot, Audit: true}}
}

func (w *world) head(tb testing.TB) check.Snapshot {
	tb.Helper()
	rev, err := w.engine.HeadRevision(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	snap, err := w.src.Snapshot(ctx, rev)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// write applies mutations in one revision.
func (w *world) write(tb testing.TB, op storage.Op, rels ...graph.Relationship) {
	tb.Helper()
	req := storage.WriteRequest{Metadata: storage.WriteMetadata{Actor: "test"}}
	for _, r := range rels {
		req.Mutations = append(req.Mutations, storage.Mutation{Op: op, Relationship: r})
	}
	if _, err := w.engine.Write(ctx, req); err != nil {
		tb.Fatal(err)
	}
}

// randomWorld fills w with memberships and grants expiring over the next
// 30 days (some never), then replaces and deletes some of them, so the
// audit log holds expirations that no longer happen. It returns the
// revision before the replacements and deletions.
func randomWorld(tb testing.TB, w *world, seed uint64, users int, now time.Time) storage.Revision {
	rng := rand.New(rand.NewPCG(seed, 1))
	exp := func() *time.Time {
		if rng.IntN(4) == 0 {
			return nil
		}
		t := now.Add(time.Duration(1+rng.IntN(30*24)) * time.Hour).Truncate(time.Second)
		return &t
	}
	var rels []graph.Relationship
	for i := range users {
		user := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", i)}}
		rels = append(rels, graph.Relationship{Resource: graph.ObjectRef{Type: "group", ID: fmt.Sprintf("g%d", rng.IntN(10))},
			Relation: "member", Subject: user, Expiration: exp()})
		if rng.IntN(2) == 0 {
			rels = append(rels, graph.Relationship{Resource: graph.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%d", rng.IntN(50))},
				Relation: "viewer", Subject: user, Expiration: exp()})
		}
	}
	for g := range 10 {
		rels = append(rels, graph.Relationship{Resource: graph.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%d", g)}, Relation: "viewer",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: fmt.Sprintf("g%d", g)}, Relation: "member"}, Expiration: exp()})
	}
	// Write in batches of 100, each its own revision, without repeats.
	seen := map[graph.Key]bool{}
	var batch []graph.Relationship
	for _, r := range rels {
		if seen[r.Key()] {
			continue
		}
		seen[r.Key()] = true
		if batch = append(batch, r); len(batch) == 100 {
			w.write(tb, storage.OpTouch, batch...)
			batch = nil
		}
	}
	if len(batch) > 0 {
		w.write(tb, storage.OpTouch, batch...)
	}
	mid, err := w.engine.HeadRevision(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	// Replace a tenth (new expiration) and delete a tenth.
	for i, r := range rels[:len(rels)/5] {
		if i%2 == 0 {
			r.Expiration = exp()
			w.write(tb, storage.OpTouch, r)
		} else {
			w.write(tb, storage.OpDelete, r)
		}
	}
	return mid
}

// expiringLines runs Expiring and prints its items.
func expiringLines(tb testing.TB, src access.Source, snap check.Snapshot, q access.ExpiringQuery) []string {
	tb.Helper()
	ans, err := access.Expiring(ctx, src, snap, q)
	if err != nil {
		tb.Fatal(err)
	}
	if ans.Truncated != "" {
		tb.Fatalf("truncated: %s", ans.Truncated)
	}
	var out []string
	for _, it := range ans.Items {
		if it.Relationship != nil {
			out = append(out, it.Relationship.String())
		} else {
			a := it.Access
			out = append(out, fmt.Sprintf("%s#%s@%s ends %s", a.Resource, a.Permission, a.Subject, a.EndsAt.UTC().Format(time.RFC3339)))
		}
	}
	return out
}

// TestExpiringAgainstScan: the expiring relationships Expiring finds are
// the ones a brute-force filter of every live relationship finds, for
// several windows and filters, after replacements and deletions.
func TestExpiringAgainstScan(t *testing.T) {
	w := newWorld(t, "")
	now := time.Now()
	randomWorld(t, w, 7, 300, now)
	snap := w.head(t)
	var all []graph.Relationship
	for r, err := range snap.Reader.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{Now: now}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	dana := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u3"}}
	for _, q := range []access.ExpiringQuery{
		{Within: 24 * time.Hour},
		{Within: 7 * 24 * time.Hour},
		{Within: 7 * 24 * time.Hour, ResourceType: "doc"},
		{Within: 30 * 24 * time.Hour, Subject: &dana},
		{Within: 366 * 24 * time.Hour, ResourceType: "group"},
	} {
		name := fmt.Sprintf("within=%v/type=%q/subject=%v", q.Within, q.ResourceType, q.Subject)
		q.Now, q.RelationshipsOnly = now, true
		var want []string
		for _, r := range all {
			e := r.Expiration
			if e == nil || e.Before(now) || !e.Before(now.Add(q.Within)) || q.ResourceType != "" && r.Resource.Type != q.ResourceType ||
				q.Subject != nil && r.Subject.Object != q.Subject.Object {
				continue
			}
			want = append(want, r.String())
		}
		got := expiringLines(t, w.src, snap, q)
		if !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("%s, scan:\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(want) == 0 && q.Within > 24*time.Hour {
			t.Errorf("%s: nothing expires; the world is too small to test", name)
		}
	}
}

// TestExpiringAccessesEnd: every access Expiring reports ends in the
// window, and EndsAt of the engine agrees.
func TestExpiringAccessesEnd(t *testing.T) {
	w := newWorld(t, "")
	now := time.Now()
	randomWorld(t, w, 11, 100, now)
	snap := w.head(t)
	ans, err := access.Expiring(ctx, w.src, snap, access.ExpiringQuery{Within: 7 * 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	accesses := 0
	for _, it := range ans.Items {
		a := it.Access
		if a == nil {
			continue
		}
		accesses++
		ends, granted, err := w.src.Checker.EndsAt(ctx, snap, check.Request{Resource: a.Resource, Permission: a.Permission, Subject: a.Subject, Now: now})
		if err != nil || !granted || !ends.Equal(a.EndsAt) || a.EndsAt.Before(now) || !a.EndsAt.Before(now.Add(7*24*time.Hour)) {
			t.Errorf("%s#%s@%s ends %v: EndsAt says %v, granted %v, err %v", a.Resource, a.Permission, a.Subject, a.EndsAt, ends, granted, err)
		}
	}
	if accesses == 0 {
		t.Error("no access ends in the window; the world is too small to test")
	}
}

func sorted(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

// TestExpiringBounds: past its bounds an answer keeps the soonest
// expiring relationships, or what the scan read, and says so.
func TestExpiringBounds(t *testing.T) {
	w := newWorld(t, "")
	now := time.Now()
	randomWorld(t, w, 5, 100, now)
	snap := w.head(t)
	q := access.ExpiringQuery{Within: 30 * 24 * time.Hour, Now: now, RelationshipsOnly: true}
	all := expiringLines(t, w.src, snap, q)
	if len(all) < 20 {
		t.Fatalf("only %d expiring relationships; the world is too small to test", len(all))
	}
	for _, c := range []struct {
		name string
		src  access.Source
		want []string
		note string
	}{
		{"relationships", access.Source{MaxRelationships: 5}, all[:5], "kept the 5 soonest expiring relationships, the limit per call"},
		{"scan", access.Source{MaxScan: 10}, nil, "stopped after reading 10 relationships, the limit of one scan"},
	} {
		src := w.src
		src.MaxRelationships, src.MaxScan = c.src.MaxRelationships, c.src.MaxScan
		ans, err := access.Expiring(ctx, src, snap, q)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ans.Truncated, c.note) {
			t.Errorf("%s: note %q, want %q", c.name, ans.Truncated, c.note)
		}
		var got []string
		for _, it := range ans.Items {
			got = append(got, it.Relationship.String())
		}
		if c.want != nil && !slices.Equal(got, c.want) {
			t.Errorf("%s: kept\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
		if len(got) > 10 {
			t.Errorf("%s: %d relationships from a scan of 10", c.name, len(got))
		}
	}
}
