package server

import (
	"context"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/metadata"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"

	"github.com/pembadb/pemba/internal/cputime"
)

// benchCheckServer serves the data BenchmarkCheckGRPC checks:
// doc:d#view@user:alice, granted through a group.
func benchCheckServer(b *testing.B) *Server {
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
	return srv
}

var (
	benchAuthzedCheck = &v1.CheckPermissionRequest{Resource: &v1.ObjectReference{ObjectType: "doc", ObjectId: "d"}, Permission: "view",
		Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}}}
	benchPembaCheck = &pb.CheckPermissionRequest{Resource: &pb.ObjectRef{Type: "doc", Id: "d"}, Permission: "view",
		Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "alice"}}}
)

// BenchmarkAuthzedCheckGRPC is BenchmarkCheckGRPC through SpiceDB's API:
// the same server, data and check, so the difference is the translation.
func BenchmarkAuthzedCheckGRPC(b *testing.B) {
	srv := benchCheckServer(b)
	client := v1.NewPermissionsServiceClient(dialTest(b, srv))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			resp, err := client.CheckPermission(ctx, benchAuthzedCheck)
			if err != nil || resp.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
				b.Errorf("check: %v %v", resp.GetPermissionship(), err)
				return
			}
		}
	})
}

// BenchmarkCheckAPIs runs one check through each API, alternating with
// -count, over one server, and reports the process's CPU time per check
// (cpu-µs/op) beside wall time, which on a shared machine mostly measures
// waiting for a core. grpc/* go through a real client and listener;
// handler/* call the services' methods directly, so their difference is
// the translation alone.
func BenchmarkCheckAPIs(b *testing.B) {
	srv := benchCheckServer(b)
	cc := dialTest(b, srv)
	pembaClient, authzedClient := pb.NewPermissionServiceClient(cc), v1.NewPermissionsServiceClient(cc)
	pembaSvc, authzedSvc := &permissionService{s: srv}, &authzedPermissions{s: srv}
	// The metadata a gRPC client sends: the SpiceDB handlers read it for
	// the version header request.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(":authority", "127.0.0.1:50051",
		"content-type", "application/grpc", "user-agent", "grpc-go/1.0", "authorization", "Bearer "+testSecret))
	for _, bc := range []struct {
		name  string
		check func() (granted bool, err error)
	}{
		{"grpc/pemba", func() (bool, error) {
			resp, err := pembaClient.CheckPermission(context.Background(), benchPembaCheck)
			return resp.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION, err
		}},
		{"grpc/spicedb", func() (bool, error) {
			resp, err := authzedClient.CheckPermission(context.Background(), benchAuthzedCheck)
			return resp.GetPermissionship() == v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, err
		}},
		{"handler/pemba", func() (bool, error) {
			resp, err := pembaSvc.CheckPermission(ctx, benchPembaCheck)
			return resp.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION, err
		}},
		{"handler/spicedb", func() (bool, error) {
			resp, err := authzedSvc.CheckPermission(ctx, benchAuthzedCheck)
			return resp.GetPermissionship() == v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			start := cputime.Process()
			for b.Loop() {
				if granted, err := bc.check(); err != nil || !granted {
					b.Fatalf("check: granted %v, %v", granted, err)
				}
			}
			b.ReportMetric(float64(cputime.Process()-start)/float64(b.N)/1e3, "cpu-µs/op")
		})
	}
}
