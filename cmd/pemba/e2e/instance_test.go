package e2e

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestZookieBoundToSQLDatabase: a zookie minted by a server on one
// PostgreSQL database is refused by a server on another, even though that
// database has reached the same revision, and accepted by a server
// restarted on the same database — the ID lives in the database, not in
// the process.
func TestZookieBoundToSQLDatabase(t *testing.T) {
	ctx := context.Background()
	check := func(c *client, z *pb.Zookie) (*pb.CheckPermissionResponse, error) {
		return c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: atLeast(z),
			Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")})
	}
	write := func(c *client) *pb.Zookie {
		t.Helper()
		w, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
			Updates: []*pb.RelationshipUpdate{touch(rel("document", "d", "viewer", "user", "u"))}})
		if err != nil {
			t.Fatal(err)
		}
		return w.WrittenAt
	}
	a := startServer(t, datastoreArgs(t, "postgres")...)
	b := startServer(t, datastoreArgs(t, "postgres")...)
	z := write(setup(t, a))
	write(setup(t, b)) // b is at the zookie's revision too

	_, err := check(b.client(tokenSecret), z)
	wantStatus(t, "check on another database", err, codes.InvalidArgument, "different datastore")

	if err := a.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	a.restart()
	resp, err := check(a.client(tokenSecret), z)
	if err != nil {
		t.Fatalf("check on the same database after a restart: %v", err)
	}
	if resp.Permissionship != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("check after restart: %v, want HAS_PERMISSION", resp.Permissionship)
	}
}
