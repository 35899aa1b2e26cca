package check

import (
	"context"
	"testing"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestUntilCountsOnlyWhatDecides: an answer's until is when the answer may
// change, counting only the relationships that decide it — the granting
// sides of a union, a closure member's own chain, the grant of a
// subtracted side — not every expiring relationship the evaluation read.
func TestUntilCountsOnlyWhatDecides(t *testing.T) {
	s, err := schema.Compile("until.zed", `
use expiration
definition user {}
definition group {
	relation member: user with expiration | group#member with expiration
}
definition document {
	relation viewer: group#member with expiration | user with expiration
	relation banned: user with expiration
	relation cleared: user with expiration
	permission view = viewer
	permission read = viewer - banned
	permission both = viewer & cleared
}`)
	if err != nil {
		t.Fatal(err)
	}
	day := func(n int) *time.Time { d := goldenNow.Add(time.Duration(n) * 24 * time.Hour); return &d }
	rel := func(spec string, exp *time.Time) graph.Relationship {
		r := graph.MustParseRelationship(spec)
		r.Expiration = exp
		return r
	}
	rels := []graph.Relationship{
		// standing: for good through g1, for a while through g2 and g3.
		rel("document:standing#viewer@group:g1#member", nil),
		rel("document:standing#viewer@group:g2#member", day(1)),
		rel("document:standing#viewer@group:g3#member", day(2)),
		rel("group:g1#member@user:u", nil),
		rel("group:g2#member@user:u", day(3)),
		rel("group:g3#member@user:u", nil),
		// two: through g2 until day 1 and g3 until day 2.
		rel("document:two#viewer@group:g2#member", day(1)),
		rel("document:two#viewer@group:g3#member", day(2)),
		// nested: g5 ⊃ g4 ⊃ u, the chain ends on day 4; g6 ⊃ u ends on day 5.
		rel("group:g4#member@user:u", day(4)),
		rel("group:g5#member@group:g4#member", nil),
		rel("group:g7#member@user:u", day(5)),
		rel("group:g5#member@group:g7#member", nil),
		rel("document:nested#viewer@group:g5#member", nil),
		// banned: u is banned until day 6, so read is denied until then.
		rel("document:banned#viewer@user:u", nil),
		rel("document:banned#banned@user:u", day(6)),
		// both: viewer for good, cleared until day 7; denied: never cleared.
		rel("document:both#viewer@user:u", nil),
		rel("document:both#cleared@user:u", day(7)),
		rel("document:denied#viewer@user:u", day(1)),
	}
	store := newTestStore(t)
	store.write(t, rels)
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	u := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u"}}
	never := int64(dispatch.Never)
	for _, c := range []struct {
		doc, perm string
		want      Permissionship
		until     int64
	}{
		{"standing", "view", HasPermission, never},
		{"two", "view", HasPermission, day(2).UnixNano()},
		{"nested", "view", HasPermission, day(5).UnixNano()},
		{"banned", "read", NoPermission, day(6).UnixNano()},
		{"both", "both", HasPermission, day(7).UnixNano()},
		{"denied", "both", NoPermission, never},
	} {
		for _, cfg := range []Config{{}, {CacheEntries: -1, ReadCacheBytes: -1}} {
			e := New(cfg)
			got, err := e.answerAt(context.Background(), snap, u, nil, graph.ObjectRef{Type: "document", ID: c.doc}, c.perm, goldenNow)
			if err != nil {
				t.Fatal(err)
			}
			if got.perm != c.want || got.until != c.until {
				t.Errorf("%s#%s: %v until %v, want %v until %v", c.doc, c.perm, got.perm, time.Unix(0, got.until).UTC(), c.want, time.Unix(0, c.until).UTC())
			}
		}
	}
}

// TestUntilOfAllArrow: a related object that does not grant blocks
// `.all` only while its relationship lasts, so the denial's until is
// that relationship's expiration, after which the others grant.
func TestUntilOfAllArrow(t *testing.T) {
	s, err := schema.Compile("all.zed", `
use expiration
definition user {}
definition folder {
	relation viewer: user
}
definition document {
	relation parent: folder with expiration
	permission all_view = parent.all(viewer)
}`)
	if err != nil {
		t.Fatal(err)
	}
	blockedUntil := goldenNow.Add(72 * time.Hour)
	store := newTestStore(t)
	store.write(t, []graph.Relationship{
		graph.MustParseRelationship("document:d#parent@folder:a"),
		{Resource: graph.ObjectRef{Type: "document", ID: "d"}, Relation: "parent",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: "b"}}, Expiration: &blockedUntil},
		graph.MustParseRelationship("folder:a#viewer@user:u"),
	})
	snap := Snapshot{Schema: s, Reader: store.reader(t)}
	u := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u"}}
	d := graph.ObjectRef{Type: "document", ID: "d"}
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	now, err := e.answerAt(context.Background(), snap, u, nil, d, "all_view", goldenNow)
	if err != nil || now.perm != NoPermission || now.until != blockedUntil.UnixNano() {
		t.Fatalf("now: %v until %v (%v), want denied until %v", now.perm, time.Unix(0, now.until).UTC(), err, blockedUntil)
	}
	later, err := e.answerAt(context.Background(), snap, u, nil, d, "all_view", blockedUntil)
	if err != nil || later.perm != HasPermission {
		t.Fatalf("once folder:b's relationship expired: %v (%v), want granted", later.perm, err)
	}
}

// TestUntilOfCycleInOneBatch: objects of one batch that reach each other
// (a cycle inside one problem, as LookupResources checks its candidates)
// settle with the earliest until among them. folder:f3 reaches
// folder:f1, whose parent f3 expires in an hour; until then the cycle
// denies both, afterwards f1 and f3 are granted through f2. A denial
// cached for f3 before the expiration must not outlive it.
func TestUntilOfCycleInOneBatch(t *testing.T) {
	s, err := schema.Compile("cycle.zed", `definition user {}
definition folder {
  relation parent: folder
  relation banned: user:*
  permission reach = parent.all(reach) + banned
}`)
	if err != nil {
		t.Fatal(err)
	}
	expires := goldenNow.Add(time.Hour)
	snap := storeOf(t, s,
		"folder:f1#parent@folder:f2",
		"folder:f1#parent@folder:f3[expiration:"+expires.UTC().Format(time.RFC3339)+"]",
		"folder:f2#banned@user:*",
		"folder:f3#parent@folder:f1",
	)
	ctx := context.Background()
	u := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u"}}
	for _, chunk := range []int{0, 1} { // f1 and f3 in one problem, and apart
		e := New(Config{ChunkSize: chunk})
		var before []string
		if err := e.LookupResources(ctx, snap, LookupResourcesRequest{ResourceType: "folder", Permission: "reach", Subject: u, Now: goldenNow},
			func(r ResourceResult) bool { before = append(before, r.ID); return true }); err != nil {
			t.Fatal(err)
		}
		if len(before) != 1 || before[0] != "f2" {
			t.Fatalf("chunk %d: before the expiration folders %v reach, want [f2]", chunk, before)
		}
		for _, id := range []string{"f1", "f2", "f3"} {
			r, err := e.Check(ctx, snap, Request{Resource: graph.ObjectRef{Type: "folder", ID: id}, Permission: "reach", Subject: u, Now: expires})
			if err != nil || r.Permissionship != HasPermission {
				t.Errorf("chunk %d: folder:%s#reach once f1's parent f3 expired: %v (%v), want granted", chunk, id, r.Permissionship, err)
			}
		}
	}
}
