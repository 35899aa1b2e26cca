package e2e

import (
	"context"
	"net/http"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestDefaultConsistency: a check that names no consistency reads at the
// same revision over the CLI (no --consistency), gRPC and HTTP: the head,
// so it sees a write made just before, even while a minimize_latency
// read, with its head cached for an hour, does not.
func TestDefaultConsistency(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--quantization", "1h")
	c := setup(t, s)
	ctx := context.Background()
	minimize := &pb.Consistency{Requirement: &pb.Consistency_MinimizeLatency{MinimizeLatency: true}}

	for _, tc := range []struct {
		name  string
		check func(t *testing.T, user string) *pb.CheckPermissionResponse
	}{
		{"CLI", func(t *testing.T, user string) *pb.CheckPermissionResponse {
			r := s.cli("", "check", "document:d", "view", "user:"+user, "--json")
			resp := &pb.CheckPermissionResponse{}
			if err := protojson.Unmarshal([]byte(r.stdout), resp); err != nil {
				t.Fatalf("pemba check --json: %v (exit %d)\n%s%s", err, r.code, r.stdout, r.stderr)
			}
			return resp
		}},
		{"gRPC", func(t *testing.T, user string) *pb.CheckPermissionResponse {
			resp, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{
				Resource: obj("document", "d"), Permission: "view", Subject: sub("user", user)})
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"HTTP", func(t *testing.T, user string) *pb.CheckPermissionResponse {
			code, body := s.httpDo(http.MethodPost, "/v1/permissions/check",
				`{"resource": {"type": "document", "id": "d"}, "permission": "view", "subject": {"object": {"type": "user", "id": "`+user+`"}}}`)
			resp := &pb.CheckPermissionResponse{}
			if err := protojson.Unmarshal([]byte(body), resp); code != http.StatusOK || err != nil {
				t.Fatalf("POST /v1/permissions/check: %d %v\n%s", code, err, body)
			}
			return resp
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "u-" + tc.name
			// Cache the head before the write: a minimize_latency read
			// keeps reading there for the quantization's hour.
			if _, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: minimize,
				Resource: obj("document", "d"), Permission: "view", Subject: sub("user", user)}); err != nil {
				t.Fatal(err)
			}
			w, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
				Updates: []*pb.RelationshipUpdate{touch(rel("document", "d", "viewer", "user", user))}})
			if err != nil {
				t.Fatal(err)
			}
			stale, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: minimize,
				Resource: obj("document", "d"), Permission: "view", Subject: sub("user", user)})
			if err != nil {
				t.Fatal(err)
			}
			if stale.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
				t.Fatal("minimize_latency saw the write: its head was not cached, so this test shows nothing")
			}

			resp := tc.check(t, user)
			if resp.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION ||
				resp.GetCheckedAt().GetToken() != w.GetWrittenAt().GetToken() {
				t.Errorf("check without a consistency: %v at %q; want HAS_PERMISSION at the write's zookie %q (fully_consistent)",
					resp.GetPermissionship(), resp.GetCheckedAt().GetToken(), w.GetWrittenAt().GetToken())
			}
		})
	}
}
