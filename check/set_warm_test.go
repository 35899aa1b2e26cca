package check

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// warmTestSchema has one arrow target on a type with few objects
// (tier#clearance, two tiers) and one on a type with more than
// warmMaxObjects (team#membership).
const warmTestSchema = `
definition user {}
definition agent {
    relation principal: user
}
definition team {
    relation member: user
    permission membership = member
}
definition tier {
    relation cleared: user | agent
    relation cleared_team: team
    permission clearance = cleared + cleared_team->membership
}
definition doc {
    relation tier: tier
    relation owner: team
    relation reader: user
    permission read = (reader + owner->membership) & tier->clearance
}
`

// warmWorld returns the snapshot of warmTestSchema over teams of three
// users each, every fifth team cleared for tier "secret", and a document
// per team.
func warmWorld(t *testing.T) Snapshot {
	t.Helper()
	s, err := schema.Compile("warm.zed", warmTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	teams := 2*warmMaxObjects + 1
	rels := []string{"tier:public#cleared@user:u0", "tier:secret#cleared@agent:a1"}
	for i := range teams {
		for j := range 3 {
			rels = append(rels, fmt.Sprintf("team:t%d#member@user:u%d", i, 3*i+j))
		}
		if i%5 == 0 {
			rels = append(rels, fmt.Sprintf("tier:secret#cleared_team@team:t%d", i))
		}
		rels = append(rels, fmt.Sprintf("doc:d%d#owner@team:t%d", i, i), fmt.Sprintf("doc:d%d#tier@tier:secret", i))
	}
	return storeOf(t, s, rels...)
}

// TestArrowTargets lists the permissions arrows reach, whatever the
// operator the arrow sits under.
func TestArrowTargets(t *testing.T) {
	s, err := schema.Compile("warm.zed", warmTestSchema)
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.Node{{Type: "team", Relation: "membership"}, {Type: "tier", Relation: "clearance"}}
	if got := arrowTargets(s); !slices.Equal(got, want) {
		t.Errorf("arrowTargets = %v, want %v", got, want)
	}
}

// TestWarmSets warms the clearance of each tier, for users and for
// agents, and not the memberships of the many teams; a lookup then finds
// the clearance cached and answers as an engine without caches does.
func TestWarmSets(t *testing.T) {
	ctx := context.Background()
	snap := warmWorld(t)
	e := New(Config{})
	n, err := e.WarmSets(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	// Two tiers, for users and for agents (the other types hold no
	// clearance), and none of the 33 teams' memberships.
	if n != 4 || e.Stats().SetsWarmed != 4 {
		t.Fatalf("WarmSets cached %d sets (stats %d), want 4", n, e.Stats().SetsWarmed)
	}
	for _, k := range []struct{ subjectType, typ, id, rel string }{
		{"user", "tier", "secret", "clearance"}, {"agent", "tier", "public", "clearance"},
	} {
		key := setKey{rev: snap.Reader.Revision(), anyCtx: true, subjectType: k.subjectType, n: node{k.typ, k.id, k.rel}}
		e.sets.mu.Lock()
		_, ok := e.sets.sets.Peek(key)
		e.sets.mu.Unlock()
		if !ok {
			t.Errorf("%s:%s#%s for %s not cached", k.typ, k.id, k.rel, k.subjectType)
		}
	}
	hits := e.Stats().SetCacheHits
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	for _, id := range []string{"d0", "d1", "d5"} {
		req := LookupSubjectsRequest{Resource: graph.ObjectRef{Type: "doc", ID: id}, Permission: "read", SubjectType: "user"}
		got, err := lookupAll(ctx, e, snap, req)
		if err != nil {
			t.Fatal(err)
		}
		want, err := lookupAll(ctx, cold, snap, req)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("doc:%s#read after warming: %v, without caches %v", id, got, want)
		}
	}
	if e.Stats().SetCacheHits == hits {
		t.Error("no lookup found a warmed set")
	}
}

// TestWarmSetsBounded: without a set cache nothing is warmed, and a
// cancelled context stops warming with its error.
func TestWarmSetsBounded(t *testing.T) {
	snap := warmWorld(t)
	if n, err := New(Config{CacheEntries: -1}).WarmSets(context.Background(), snap); n != 0 || err != nil {
		t.Errorf("without a set cache: %d sets, %v; want 0, nil", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := New(Config{}).WarmSets(ctx, snap); n != 0 || err == nil {
		t.Errorf("cancelled: %d sets, %v; want 0 and an error", n, err)
	}
	if n, err := New(Config{}).WarmSets(context.Background(), Snapshot{Reader: snap.Reader}); n != 0 || err != nil {
		t.Errorf("without a schema: %d sets, %v; want 0, nil", n, err)
	}
}
