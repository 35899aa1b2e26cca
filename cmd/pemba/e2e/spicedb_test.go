package e2e

import (
	"context"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// spicedbClient dials the server's gRPC listener with SpiceDB's Go client,
// as a SpiceDB user would: insecure transport, bearer token.
func spicedbClient(t *testing.T, s *server, token string) *authzed.Client {
	t.Helper()
	c, err := authzed.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSpiceDBClient drives the real binary through SpiceDB's API on the
// same listener as pemba.v1, with tokens shared between the two APIs.
func TestSpiceDBClient(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	ctx := context.Background()
	c := spicedbClient(t, s, tokenSecret)

	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: testSchema}); err != nil {
		t.Fatal(err)
	}
	alice := &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}}
	doc := &v1.ObjectReference{ObjectType: "document", ObjectId: "readme"}
	w, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{{
		Operation:    v1.RelationshipUpdate_OPERATION_CREATE,
		Relationship: &v1.Relationship{Resource: doc, Relation: "viewer", Subject: alice},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var header metadata.MD
	versionCtx := metadata.AppendToOutgoingContext(ctx, "io.spicedb.requestversion", "true")
	resp, err := c.CheckPermission(versionCtx, &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: w.GetWrittenAt()}},
		Resource:    doc, Permission: "view", Subject: alice,
	}, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("check: %v", resp.GetPermissionship())
	}
	if v := header.Get("io.spicedb.debug.version"); len(v) != 1 || v[0] == "" {
		t.Fatalf("io.spicedb.debug.version header: %v", v)
	}

	// The ZedToken is a zookie: pemba.v1 reads at least as fresh as it.
	pc, err := s.client(tokenSecret).perms.CheckPermission(ctx, &pb.CheckPermissionRequest{
		Consistency: atLeast(&pb.Zookie{Token: w.GetWrittenAt().GetToken()}),
		Resource:    obj("document", "readme"), Permission: "view", Subject: sub("user", "alice"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if pc.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("pemba.v1 check: %v", pc.GetPermissionship())
	}

	_, err = spicedbClient(t, s, "wrong-secret").ReadSchema(ctx, &v1.ReadSchemaRequest{})
	wantStatus(t, "SpiceDB API with a wrong token", err, codes.Unauthenticated)
	_, err = c.CheckPermission(ctx, &v1.CheckPermissionRequest{Resource: &v1.ObjectReference{ObjectType: "folder", ObjectId: "x"},
		Permission: "view", Subject: alice})
	wantStatus(t, "check of an undefined type", err, codes.FailedPrecondition, "folder")
}

// TestSpiceDBSchemaReflection drives the real binary's SchemaService
// reflection and a Watch with checkpoints through SpiceDB's client.
func TestSpiceDBSchemaReflection(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := spicedbClient(t, s, tokenSecret)
	w, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: testSchema})
	if err != nil {
		t.Fatal(err)
	}
	fresh := &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: w.GetWrittenAt()}}

	reflected, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: fresh,
		OptionalFilters: []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "doc"}}})
	if err != nil {
		t.Fatal(err)
	}
	if defs := reflected.GetDefinitions(); len(defs) != 1 || len(defs[0].GetRelations()) != 2 || len(defs[0].GetPermissions()) != 1 {
		t.Fatalf("ReflectSchema: %v", reflected)
	}
	deps, err := c.DependentRelations(ctx, &v1.DependentRelationsRequest{Consistency: fresh, DefinitionName: "document", PermissionName: "view"})
	if err != nil || len(deps.GetRelations()) != 3 {
		t.Fatalf("DependentRelations: %v %v", deps, err)
	}
	computable, err := c.ComputablePermissions(ctx, &v1.ComputablePermissionsRequest{Consistency: fresh, DefinitionName: "group", RelationName: "member"})
	if err != nil || len(computable.GetPermissions()) != 2 {
		t.Fatalf("ComputablePermissions: %v %v", computable, err)
	}
	diff, err := c.DiffSchema(ctx, &v1.DiffSchemaRequest{Consistency: fresh, ComparisonSchema: testSchema + "\ndefinition folder {}"})
	if err != nil || len(diff.GetDiffs()) != 1 || diff.GetDiffs()[0].GetDefinitionAdded().GetName() != "folder" {
		t.Fatalf("DiffSchema: %v %v", diff, err)
	}
	_, err = c.DependentRelations(ctx, &v1.DependentRelationsRequest{DefinitionName: "folder", PermissionName: "view"})
	wantStatus(t, "DependentRelations of an undefined definition", err, codes.FailedPrecondition, "folder")

	stream, err := c.Watch(ctx, &v1.WatchRequest{OptionalStartCursor: w.GetWrittenAt(),
		OptionalUpdateKinds: []v1.WatchKind{v1.WatchKind_WATCH_KIND_INCLUDE_CHECKPOINTS}})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := stream.Recv()
	if err != nil || !cp.GetIsCheckpoint() || cp.GetChangesThrough().GetToken() != w.GetWrittenAt().GetToken() {
		t.Fatalf("Watch checkpoint: %v %v", cp, err)
	}
}

// TestSpiceDBPermissionsService drives the PermissionsService RPCs that
// SpiceDB's tools lean on (bulk import, expand, traced checks, guarded
// deletes) through the real binary.
func TestSpiceDBPermissionsService(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	ctx := context.Background()
	c := spicedbClient(t, s, tokenSecret)
	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: testSchema}); err != nil {
		t.Fatal(err)
	}
	ref := func(typ, id string) *v1.ObjectReference { return &v1.ObjectReference{ObjectType: typ, ObjectId: id} }
	user := func(id string) *v1.SubjectReference { return &v1.SubjectReference{Object: ref("user", id)} }
	doc := ref("document", "readme")
	eng := &v1.SubjectReference{Object: ref("group", "eng"), OptionalRelation: "member"}

	stream, err := c.ImportBulkRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: []*v1.Relationship{
		{Resource: doc, Relation: "viewer", Subject: eng},
		{Resource: ref("group", "eng"), Relation: "member", Subject: user("alice")},
		{Resource: doc, Relation: "viewer", Subject: user("bob")},
		{Resource: doc, Relation: "banned", Subject: user("bob")},
	}}); err != nil {
		t.Fatal(err)
	}
	imported, err := stream.CloseAndRecv()
	if err != nil || imported.GetNumLoaded() != 4 {
		t.Fatalf("import: %v, %v", imported, err)
	}
	full := &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}

	tree, err := c.ExpandPermissionTree(ctx, &v1.ExpandPermissionTreeRequest{Consistency: full, Resource: doc, Permission: "view"})
	if err != nil {
		t.Fatal(err)
	}
	root := tree.GetTreeRoot().GetIntermediate()
	if root.GetOperation() != v1.AlgebraicSubjectSet_OPERATION_EXCLUSION || len(root.GetChildren()) != 2 ||
		len(root.GetChildren()[0].GetLeaf().GetSubjects()) != 2 || tree.GetExpandedAt().GetToken() == "" {
		t.Fatalf("expand: %v", tree)
	}

	for _, tc := range []struct {
		user string
		want v1.CheckDebugTrace_Permissionship
	}{
		{"alice", v1.CheckDebugTrace_PERMISSIONSHIP_HAS_PERMISSION},
		{"bob", v1.CheckDebugTrace_PERMISSIONSHIP_NO_PERMISSION},
	} {
		resp, err := c.CheckPermission(ctx, &v1.CheckPermissionRequest{Consistency: full, Resource: doc, Permission: "view",
			Subject: user(tc.user), WithTracing: true})
		if err != nil {
			t.Fatal(err)
		}
		trace := resp.GetDebugTrace().GetCheck()
		if trace.GetResult() != tc.want || trace.GetPermission() != "view" || len(trace.GetSubProblems().GetTraces()) == 0 {
			t.Fatalf("trace of %s: %v", tc.user, trace)
		}
	}

	banned := []*v1.Precondition{{Operation: v1.Precondition_OPERATION_MUST_NOT_MATCH,
		Filter: &v1.RelationshipFilter{ResourceType: "document", OptionalRelation: "banned"}}}
	viewers := &v1.RelationshipFilter{ResourceType: "document", OptionalRelation: "viewer"}
	_, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalPreconditions: banned})
	wantStatus(t, "delete whose precondition fails", err, codes.FailedPrecondition, "precondition")
	banned[0].Operation = v1.Precondition_OPERATION_MUST_MATCH
	deleted, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalPreconditions: banned})
	if err != nil || deleted.GetRelationshipsDeletedCount() != 2 {
		t.Fatalf("guarded delete: %v, %v", deleted, err)
	}
}
