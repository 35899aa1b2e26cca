package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// nestedGroupSchema grants a document's viewers through nested groups.
const nestedGroupSchema = `definition user {}
definition group {
  relation member: user | group#member
}
definition document {
  relation viewer: user | group#member
  relation banned: user
  permission view = viewer - banned
}`

// TestRevokeAcrossServersWithWarmCaches: two servers share one PostgreSQL
// database. One answers checks and lookups, its caches warm and serving
// their results across the revisions that other writes create; the
// other revokes a nested-group membership. A check or lookup on the first
// carrying the revoke's zookie never sees the revoked access.
func TestRevokeAcrossServersWithWarmCaches(t *testing.T) {
	url := pg.NewDatabase(t)
	args := []string{"--datastore", "postgres", "--datastore-url", url, "--auto-migrate"}
	reader := startServer(t, args...).client(tokenSecret)
	writer := startServer(t, args...).client(tokenSecret)
	ctx := context.Background()
	if _, err := writer.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: nestedGroupSchema}); err != nil {
		t.Fatal(err)
	}
	core := &pb.SubjectRef{Object: obj("group", "core"), Relation: "member"}
	eng := &pb.SubjectRef{Object: obj("group", "eng"), Relation: "member"}
	write := func(updates ...*pb.RelationshipUpdate) *pb.Zookie {
		t.Helper()
		w, err := writer.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates})
		if err != nil {
			t.Fatal(err)
		}
		return w.GetWrittenAt()
	}
	write(touch(&pb.Relationship{Resource: obj("document", "plan"), Relation: "viewer", Subject: eng}),
		touch(&pb.Relationship{Resource: obj("group", "eng"), Relation: "member", Subject: core}))
	view := func(c *pb.Consistency, user string) pb.Permissionship {
		t.Helper()
		r, err := reader.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: c, Resource: obj("document", "plan"), Permission: "view", Subject: sub("user", user)})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetPermissionship()
	}
	viewers := func(c *pb.Consistency) map[string]bool {
		t.Helper()
		stream, err := reader.perms.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Consistency: c, Resource: obj("document", "plan"), Permission: "view", SubjectType: "user"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for {
			r, err := stream.Recv()
			if err != nil {
				break
			}
			out[r.GetSubjectId()] = true
		}
		return out
	}
	for round := range 12 {
		user := fmt.Sprint("alice", round)
		member := rel("group", "core", "member", "user", user)
		z := write(touch(member))
		// Warm the reader's caches at several revisions, unrelated writes
		// moving the head in between.
		for i := range 3 {
			if got := view(atLeast(z), user); got != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
				t.Fatalf("round %d: %s before the revoke: %v", round, user, got)
			}
			viewers(atLeast(z))
			z = write(touch(rel("document", fmt.Sprintf("other%d_%d", round, i), "viewer", "user", "bob")))
		}
		revoked := write(del(member))
		if round%2 == 1 {
			revoked = write(touch(member), touch(rel("document", "plan", "banned", "user", user)))
		}
		if got := view(atLeast(revoked), user); got != pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION {
			t.Fatalf("round %d: a check carrying the revoke's zookie: %s is %v", round, user, got)
		}
		if viewers(atLeast(revoked))[user] {
			t.Fatalf("round %d: a lookup carrying the revoke's zookie lists %s", round, user)
		}
		if round%2 == 1 {
			write(del(member))
		}
	}
}

// tierSchema clears users for sensitivity tiers, directly or through
// teams, and intersects every document's readers with its tier's.
const tierSchema = `definition user {}
definition team {
  relation member: user
}
definition tier {
  relation cleared: user
  relation cleared_team: team
  permission clearance = cleared + cleared_team->member
}
definition document {
  relation tier: tier
  relation reader: user | team#member
  permission read = reader & tier->clearance
}`

// TestWarmSetsAtStart: a restarted server computes every tier's
// clearance before it reports ready (--warm-sets-wait), says so in its
// log and metrics, and its first lookup answers from them; with
// --warm-sets-wait 0 it warms nothing.
func TestWarmSetsAtStart(t *testing.T) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			s := startServer(t, datastoreArgs(t, kind)...)
			c := s.client(tokenSecret)
			ctx := context.Background()
			if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: tierSchema}); err != nil {
				t.Fatal(err)
			}
			var updates []*pb.RelationshipUpdate
			for i := range 30 {
				team := fmt.Sprintf("t%d", i)
				updates = append(updates,
					touch(&pb.Relationship{Resource: obj("team", team), Relation: "member", Subject: sub("user", fmt.Sprintf("u%d", i))}),
					touch(&pb.Relationship{Resource: obj("document", "plan"), Relation: "reader", Subject: &pb.SubjectRef{Object: obj("team", team), Relation: "member"}}))
				if i%3 == 0 {
					updates = append(updates, touch(&pb.Relationship{Resource: obj("tier", "secret"), Relation: "cleared_team", Subject: sub("team", team)}))
				}
			}
			updates = append(updates, touch(&pb.Relationship{Resource: obj("document", "plan"), Relation: "tier", Subject: sub("tier", "secret")}),
				touch(&pb.Relationship{Resource: obj("tier", "public"), Relation: "cleared", Subject: sub("user", "u1")}))
			if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates}); err != nil {
				t.Fatal(err)
			}
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}

			s.restart()
			if !s.logged(`msg="warmed subject sets" sets=2 `) {
				t.Errorf("restarted server's log does not say it warmed both tiers' clearances:\n%s", s.log)
			}
			if _, metrics := s.httpDo("GET", "/metrics", ""); !strings.Contains(metrics, `pemba_shared_sets_total{outcome="warmed"} 2`) {
				t.Errorf("metrics do not count 2 warmed sets")
			}
			stream, err := s.client(tokenSecret).perms.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Consistency: fully(), Resource: obj("document", "plan"), Permission: "read", SubjectType: "user"})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := drain(stream.Recv); err != nil || n != 10 {
				t.Errorf("readers of plan after warming: %d (err %v), want the 10 users of cleared teams", n, err)
			}
			if _, metrics := s.httpDo("GET", "/metrics", ""); strings.Contains(metrics, "pemba_set_cache_hits_total 0\n") {
				t.Errorf("the lookup found no warmed set in the cache")
			}

			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			s.args = append(s.args, "--warm-sets-wait", "0")
			s.restart()
			if strings.Contains(s.log.String(), "warmed subject sets") {
				t.Errorf("--warm-sets-wait 0 warmed sets:\n%s", s.log)
			}
		})
	}
}

// TestImportWarmsAndRefreshes: `pemba import` of a bulk load has the
// server warm every tier's clearance again, in the background, and says
// so in its log; on PostgreSQL the import leaves the relationships table
// vacuumed and measured before it returns (not left to autovacuum's next
// nap).
func TestImportWarmsAndRefreshes(t *testing.T) {
	for _, kind := range []string{"embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			args := datastoreArgs(t, kind)
			s := startServer(t, args...)
			if _, err := s.client(tokenSecret).schema.WriteSchema(context.Background(), &pb.WriteSchemaRequest{Schema: tierSchema}); err != nil {
				t.Fatal(err)
			}
			// 12,000 relationships: 4,000 teams of one member, a third of
			// them cleared for the secret tier, each reading a document.
			var lines []string
			for i := range 4000 {
				team := fmt.Sprintf("team:t%d", i)
				lines = append(lines, fmt.Sprintf("%s#member@user:u%d", team, i),
					fmt.Sprintf("document:d%d#reader@%s#member", i, team))
				if i%3 == 0 {
					lines = append(lines, "tier:secret#cleared_team@"+team)
				} else {
					lines = append(lines, "tier:public#cleared@user:u"+strconv.Itoa(i))
				}
			}
			if r := s.cli(strings.Join(lines, "\n")+"\n", "import", "-"); r.code != 0 || !strings.Contains(r.stdout, "imported 12000") {
				t.Fatalf("import: %+v", r)
			}
			if !s.logged(`msg="warmed subject sets" sets=2 `) || !s.logged("after=import") {
				t.Errorf("the server's log does not say it warmed both tiers' clearances after the import:\n%s", s.log)
			}
			if _, metrics := s.httpDo("GET", "/metrics", ""); !strings.Contains(metrics, "\npemba_set_warming 0\n") {
				t.Errorf("metrics do not say the warming ended")
			}
			if kind != "postgres" {
				return
			}
			db, err := pgx.Connect(context.Background(), args[slices.Index(args, "--datastore-url")+1])
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close(context.Background())
			var vacuums int64
			var planned float64
			if err := db.QueryRow(context.Background(), `SELECT s.vacuum_count, c.reltuples FROM pg_stat_user_tables s
				JOIN pg_class c ON c.oid = s.relid WHERE s.relid = 'relationships'::regclass`).Scan(&vacuums, &planned); err != nil {
				t.Fatal(err)
			}
			if vacuums != 1 || planned < 12000 {
				t.Errorf("after the import: %d vacuums of the relationships table, the planner counts %v rows; want 1 and 12,000", vacuums, planned)
			}
		})
	}
}
