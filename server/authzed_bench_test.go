package server

import (
	"context"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// BenchmarkAuthzedCheckGRPC is BenchmarkCheckGRPC through SpiceDB's API:
// the same server, data and check, so the difference is the translation.
func BenchmarkAuthzedCheckGRPC(b *testing.B) {
	srv, engine := newTestServer(b, 5*time.Second)
	ctx := context.Background()
	meta := storage.WriteMetadata{Actor: "bench"}
	schemaText := "definition user {}\ndefinition group {\n relation member: user\n}\ndefinition doc {\n relation viewer: user | group#member\n permission view = viewer\n}"
	if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: schemaText}, Metadata: meta}); err != nil {
		b.Fatal(err)
	}
	var muts []storage.Mutation
	for _, s := range []string{"group:g#member@user:alice", "doc:d#viewer@group:g#member"} {
		muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(s)})
	}
	if _, err := engine.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: meta}); err != nil {
		b.Fatal(err)
	}
	client := v1.NewPermissionsServiceClient(dialTest(b, srv))
	req := &v1.CheckPermissionRequest{Resource: &v1.ObjectReference{ObjectType: "doc", ObjectId: "d"}, Permission: "view",
		Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}}}
	b.ReportAllocs()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			resp, err := client.CheckPermission(ctx, req)
			if err != nil || resp.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
				b.Errorf("check: %v %v", resp.GetPermissionship(), err)
				return
			}
		}
	})
}
