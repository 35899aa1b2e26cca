package check

import (
	"context"
	"fmt"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// arrowReadSchema is a tier whose clearance reaches cleared teams'
// members and their agents, with workloads among the cleared teams' rows
// (workloads define neither membership nor delegate).
const arrowReadSchema = `
definition user {
	relation delegate: agent
}
definition agent {}
definition workload {}
definition team {
	relation member: user
	relation subteam: team
	permission membership = member + subteam->membership
	permission delegate = member->delegate + subteam->delegate
}
definition tier {
	relation cleared_team: team | workload
	permission clearance = cleared_team->membership + cleared_team->delegate
	permission all_cleared = cleared_team.all(membership)
}`

// TestArrowReadsOnlyRowsThatCanGrant: a check through an arrow whose
// tupleset has thousands of rows reads the rows that can grant (the
// subject's teams), not all of them, and answers as before.
func TestArrowReadsOnlyRowsThatCanGrant(t *testing.T) {
	s, err := schema.Compile("tier.zed", arrowReadSchema)
	if err != nil {
		t.Fatal(err)
	}
	const teams, workloads = 600, 300
	rel := func(res graph.ObjectRef, relation string, sub graph.ObjectRef) graph.Relationship {
		return graph.Relationship{Resource: res, Relation: relation, Subject: graph.SubjectRef{Object: sub}}
	}
	tier := graph.ObjectRef{Type: "tier", ID: "secret"}
	team := func(i int) graph.ObjectRef { return graph.ObjectRef{Type: "team", ID: fmt.Sprintf("t%03d", i)} }
	user := func(id string) graph.ObjectRef { return graph.ObjectRef{Type: "user", ID: id} }
	var rels []graph.Relationship
	for i := range teams {
		rels = append(rels, rel(tier, "cleared_team", team(i)))
	}
	for i := range workloads {
		rels = append(rels, rel(tier, "cleared_team", graph.ObjectRef{Type: "workload", ID: fmt.Sprintf("w%03d", i)}))
	}
	inner := graph.ObjectRef{Type: "team", ID: "inner"}
	rels = append(rels,
		rel(team(123), "subteam", inner),
		rel(inner, "member", user("alice")),
		rel(user("alice"), "delegate", graph.ObjectRef{Type: "agent", ID: "helper"}),
		rel(team(7), "member", user("carol")),
	)
	store := newTestStore(t)
	store.write(t, rels)
	reader := &countingReader{Reader: store.reader(t)}
	snap := Snapshot{Schema: s, Reader: reader}
	ctx := context.Background()

	for _, tc := range []struct {
		subject    graph.ObjectRef
		permission string
		want       Permissionship
		maxRows    int64 // rows the check may read: the tier's first prefetchRows, then the few that can grant
	}{
		{user("alice"), "clearance", HasPermission, prefetchRows + 20},
		{user("carol"), "clearance", HasPermission, prefetchRows + 20},
		{user("bob"), "clearance", NoPermission, prefetchRows + 20},
		{graph.ObjectRef{Type: "agent", ID: "helper"}, "clearance", HasPermission, prefetchRows + 20},
		{graph.ObjectRef{Type: "agent", ID: "stranger"}, "clearance", NoPermission, prefetchRows + 20},
		// .all needs every row: a workload row (no membership) blocks it.
		{user("alice"), "all_cleared", NoPermission, teams + workloads + 100},
	} {
		e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
		reader.reads()
		r, err := e.Check(ctx, snap, Request{Resource: tier, Permission: tc.permission, Subject: graph.SubjectRef{Object: tc.subject}})
		if err != nil {
			t.Fatal(err)
		}
		_, rows := reader.reads()
		if r.Permissionship != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.subject, tc.permission, r.Permissionship, tc.want)
		}
		if rows > tc.maxRows {
			t.Errorf("%s %s read %d rows, want at most %d", tc.subject, tc.permission, rows, tc.maxRows)
		}
		if tc.permission == "all_cleared" && rows < teams+workloads {
			t.Errorf("%s %s read %d rows: a .all arrow must read every row (%d)", tc.subject, tc.permission, rows, teams+workloads)
		}
	}
}
