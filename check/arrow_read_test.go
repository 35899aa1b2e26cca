package check

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
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

// holdersSchema: a team's delegate is any member's agent. The variants
// let user#delegate name agents through a wildcard or a crew, where the
// members' own rows are no longer the only way to hold it.
const holdersSchema = `
definition agent {}
definition crew {
	relation member: agent
}
definition user {
	relation delegate: agent%s
}
definition team {
	relation member: user
	permission delegate = member->delegate
	permission all_delegate = member.all(delegate)
}`

// TestArrowNarrowsToDirectHolders: an agent's check of a team's
// `member->delegate` reads who the agent acts for, not every member's
// rows, and answers as the walk does; where user#delegate may hold the
// agent otherwise (a wildcard, a crew's members) it checks every member.
func TestArrowNarrowsToDirectHolders(t *testing.T) {
	const members = 40
	team := graph.ObjectRef{Type: "team", ID: "t"}
	user := func(i int) graph.ObjectRef { return graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%02d", i)} }
	agent := func(id string) graph.ObjectRef { return graph.ObjectRef{Type: "agent", ID: id} }
	rel := func(res graph.ObjectRef, relation string, sub graph.SubjectRef) graph.Relationship {
		return graph.Relationship{Resource: res, Relation: relation, Subject: sub}
	}
	plain := func(o graph.ObjectRef) graph.SubjectRef { return graph.SubjectRef{Object: o} }
	base := func() []graph.Relationship {
		var rels []graph.Relationship
		for i := range members {
			rels = append(rels, rel(team, "member", plain(user(i))))
		}
		return append(rels,
			rel(user(7), "delegate", plain(agent("helper"))),
			rel(user(50), "delegate", plain(agent("outsider"))), // not a member
		)
	}
	for _, tc := range []struct {
		name, allowed string
		extra         []graph.Relationship
		subject       string
		permission    string
		want          Permissionship
		maxUsers      int64 // users whose rows the check may read
	}{
		{"principal's agent", "", nil, "helper", "delegate", HasPermission, 1},
		{"a non-member's agent", "", nil, "outsider", "delegate", NoPermission, 0},
		{"an agent of no one", "", nil, "stranger", "delegate", NoPermission, 0},
		// .all needs every member's answer: nothing is narrowed.
		{".all", "", nil, "helper", "all_delegate", NoPermission, 2 * members},
		{"wildcard", " | agent:*", []graph.Relationship{rel(user(3), "delegate", plain(agent("*")))},
			"stranger", "delegate", HasPermission, 2 * members},
		{"crew", " | crew#member", []graph.Relationship{
			rel(user(9), "delegate", graph.SubjectRef{Object: graph.ObjectRef{Type: "crew", ID: "c"}, Relation: "member"}),
			rel(graph.ObjectRef{Type: "crew", ID: "c"}, "member", plain(agent("stranger")))},
			"stranger", "delegate", HasPermission, 2 * members},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := schema.Compile("holders.zed", fmt.Sprintf(holdersSchema, tc.allowed))
			if err != nil {
				t.Fatal(err)
			}
			store := newTestStore(t)
			store.write(t, append(base(), tc.extra...))
			reader := &objectsRead{Reader: store.reader(t), typ: "user"}
			e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
			r, err := e.Check(context.Background(), Snapshot{Schema: s, Reader: reader},
				Request{Resource: team, Permission: tc.permission, Subject: plain(agent(tc.subject))})
			if err != nil {
				t.Fatal(err)
			}
			if r.Permissionship != tc.want {
				t.Errorf("%v, want %v", r.Permissionship, tc.want)
			}
			if users := reader.objects.Load(); users > tc.maxUsers || (tc.maxUsers >= members && users < members) {
				t.Errorf("read the rows of %d users, want at most %d, and every member's when that is %d", users, tc.maxUsers, members)
			}
		})
	}
}

// objectsRead counts the objects of one type whose rows forward queries
// name.
type objectsRead struct {
	storage.Reader
	typ     string
	objects atomic.Int64
}

func (o *objectsRead) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	if f.ResourceType == o.typ {
		o.objects.Add(int64(len(f.ResourceIDs)))
	}
	return o.Reader.QueryRelationships(ctx, f, opts)
}
