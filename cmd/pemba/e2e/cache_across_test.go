package e2e

import (
	"context"
	"fmt"
	"testing"

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
