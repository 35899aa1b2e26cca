package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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

// onEachDatastore runs test against a fresh server on the memory and the
// embedded datastore.
func onEachDatastore(t *testing.T, test func(t *testing.T, s *server)) {
	for _, kind := range []string{"memory", "embedded"} {
		t.Run(kind, func(t *testing.T) { test(t, startServer(t, datastoreArgs(t, kind)...)) })
	}
}

// TestSpiceDBClient drives the real binary through SpiceDB's API on the
// same listener as pemba.v1, with tokens shared between the two APIs.
func TestSpiceDBClient(t *testing.T) { onEachDatastore(t, testSpiceDBClient) }

func testSpiceDBClient(t *testing.T, s *server) {
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
func TestSpiceDBSchemaReflection(t *testing.T) { onEachDatastore(t, testSpiceDBSchemaReflection) }

func testSpiceDBSchemaReflection(t *testing.T, s *server) {
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
func TestSpiceDBPermissionsService(t *testing.T) { onEachDatastore(t, testSpiceDBPermissionsService) }

func testSpiceDBPermissionsService(t *testing.T, s *server) {
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

// TestSpiceDBBackupRestore does what `zed backup create` and `zed backup
// restore` do, with SpiceDB's Go client against the real binary: load
// 10,000 relationships in one ImportBulkRelationships (the default bound
// of one import's transaction) into PostgreSQL, check them, export them
// page by page and restore the export into a second server, on the
// embedded engine, in imports of 1,000; a restore that repeats an import
// fails it whole.
func TestSpiceDBBackupRestore(t *testing.T) {
	const groups, users = 100, 99 // 100 memberships per group, one document per group
	src := startServer(t, datastoreArgs(t, "postgres")...)
	dst := startServer(t, datastoreArgs(t, "embedded")...)
	ctx := context.Background()
	from, to := spicedbClient(t, src, tokenSecret), spicedbClient(t, dst, tokenSecret)
	for _, c := range []*authzed.Client{from, to} {
		if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: testSchema}); err != nil {
			t.Fatal(err)
		}
	}
	ref := func(typ, id string) *v1.ObjectReference { return &v1.ObjectReference{ObjectType: typ, ObjectId: id} }
	var rels []*v1.Relationship
	for g := range groups {
		group := ref("group", fmt.Sprintf("g%d", g))
		for u := range users {
			rels = append(rels, &v1.Relationship{Resource: group, Relation: "member",
				Subject: &v1.SubjectReference{Object: ref("user", fmt.Sprintf("u%d", (g+u)%1000))}})
		}
		rels = append(rels, &v1.Relationship{Resource: ref("document", fmt.Sprintf("d%d", g)), Relation: "viewer",
			Subject: &v1.SubjectReference{Object: group, OptionalRelation: "member"}})
	}
	if len(rels) != 10000 {
		t.Fatalf("%d relationships, want 10000", len(rels))
	}
	importAll := func(c *authzed.Client, rels []*v1.Relationship) (uint64, error) {
		stream, err := c.ImportBulkRelationships(ctx)
		if err != nil {
			return 0, err
		}
		for chunk := range slices.Chunk(rels, 500) {
			if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: chunk}); err != nil {
				break // the server ended the stream: CloseAndRecv says why
			}
		}
		resp, err := stream.CloseAndRecv()
		return resp.GetNumLoaded(), err
	}
	if n, err := importAll(from, rels); err != nil || n != 10000 {
		t.Fatalf("import of 10,000: %d, %v", n, err)
	}
	full := &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	check := func(c *authzed.Client, doc, user string) v1.CheckPermissionResponse_Permissionship {
		t.Helper()
		resp, err := c.CheckPermission(ctx, &v1.CheckPermissionRequest{Consistency: full, Resource: ref("document", doc),
			Permission: "view", Subject: &v1.SubjectReference{Object: ref("user", user)}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetPermissionship()
	}
	has, no := v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
	for _, c := range []struct {
		doc, user string
		want      v1.CheckPermissionResponse_Permissionship
	}{{"d0", "u0", has}, {"d0", "u98", has}, {"d0", "u99", no}, {"d7", "u105", has}, {"d7", "u6", no}} {
		if got := check(from, c.doc, c.user); got != c.want {
			t.Errorf("check %s view %s: %v, want %v", c.doc, c.user, got, c.want)
		}
	}

	// Backup: every page of the export, as zed backup create reads it.
	export := func(c *authzed.Client) []*v1.Relationship {
		t.Helper()
		var out []*v1.Relationship
		var cursor *v1.Cursor
		for {
			stream, err := c.ExportBulkRelationships(ctx, &v1.ExportBulkRelationshipsRequest{Consistency: full, OptionalLimit: 1000, OptionalCursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages := receiveAll(t, stream.Recv)
			if len(pages) == 0 {
				return out
			}
			for _, page := range pages {
				out, cursor = append(out, page.GetRelationships()...), page.GetAfterResultCursor()
			}
		}
	}
	backup := export(from)
	if len(backup) != 10000 {
		t.Fatalf("export holds %d relationships, want 10000", len(backup))
	}

	// Restore in imports of 1,000; the same import again fails whole.
	for chunk := range slices.Chunk(backup, 1000) {
		if n, err := importAll(to, chunk); err != nil || n != 1000 {
			t.Fatalf("restore import: %d, %v", n, err)
		}
	}
	if _, err := importAll(to, append(rels[:0:0], &v1.Relationship{Resource: ref("document", "new"), Relation: "viewer",
		Subject: &v1.SubjectReference{Object: ref("user", "u1")}}, backup[0])); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("import repeating a restored relationship: %v, want ALREADY_EXISTS", err)
	}
	if got := check(to, "new", "u1"); got != no {
		t.Fatalf("the failed import committed part of itself: check new view u1 = %v", got)
	}
	restored := export(to)
	key := func(r *v1.Relationship) string {
		return r.GetResource().GetObjectType() + ":" + r.GetResource().GetObjectId() + "#" + r.GetRelation() + "@" +
			r.GetSubject().GetObject().GetObjectType() + ":" + r.GetSubject().GetObject().GetObjectId() + "#" + r.GetSubject().GetOptionalRelation()
	}
	want, got := make([]string, len(backup)), make([]string, len(restored))
	for i, r := range backup {
		want[i] = key(r)
	}
	for i, r := range restored {
		got[i] = key(r)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the restore differs from the backup: %d relationships, want %d", len(got), len(want))
	}
	if got := check(to, "d7", "u105"); got != has {
		t.Fatalf("check on the restored server: %v", got)
	}
}

// TestSpiceDBQueries drives the read side that the other tests leave
// out — ReadSchema, ReadRelationships, CheckBulkPermissions,
// LookupResources, LookupSubjects, Watch of a write and the experimental
// bulk check — through the real binary on both datastores.
func TestSpiceDBQueries(t *testing.T) { onEachDatastore(t, testSpiceDBQueries) }

func testSpiceDBQueries(t *testing.T, s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := spicedbClient(t, s, tokenSecret)
	ws, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: testSchema})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := c.Watch(ctx, &v1.WatchRequest{OptionalStartCursor: ws.GetWrittenAt(), OptionalObjectTypes: []string{"document"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(typ, id string) *v1.ObjectReference { return &v1.ObjectReference{ObjectType: typ, ObjectId: id} }
	user := func(id string) *v1.SubjectReference { return &v1.SubjectReference{Object: ref("user", id)} }
	create := func(r *v1.Relationship) *v1.RelationshipUpdate {
		return &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_CREATE, Relationship: r}
	}
	eng := &v1.SubjectReference{Object: ref("group", "eng"), OptionalRelation: "member"}
	w, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
		create(&v1.Relationship{Resource: ref("group", "eng"), Relation: "member", Subject: user("alice")}),
		create(&v1.Relationship{Resource: ref("group", "eng"), Relation: "member", Subject: user("bob")}),
		create(&v1.Relationship{Resource: ref("document", "readme"), Relation: "viewer", Subject: eng}),
		create(&v1.Relationship{Resource: ref("document", "readme"), Relation: "banned", Subject: user("bob")}),
		create(&v1.Relationship{Resource: ref("document", "roadmap"), Relation: "viewer", Subject: user("alice")}),
		create(&v1.Relationship{Resource: ref("document", "other"), Relation: "viewer", Subject: user("carol")}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	at := &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: w.GetWrittenAt()}}

	schema, err := c.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if err != nil || schema.GetSchemaText() == "" || schema.GetReadAt().GetToken() == "" {
		t.Fatalf("ReadSchema: %v, %v", schema, err)
	}

	rs, err := c.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{Consistency: at,
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceIdPrefix: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, r := range receiveAll(t, rs.Recv) {
		read = append(read, r.GetRelationship().GetResource().GetObjectId()+"#"+r.GetRelationship().GetRelation())
	}
	if want := []string{"readme#banned", "readme#viewer", "roadmap#viewer"}; !slices.Equal(read, want) {
		t.Fatalf("ReadRelationships with prefix r: %v, want %v", read, want)
	}

	bulk, err := c.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Consistency: at, Items: []*v1.CheckBulkPermissionsRequestItem{
		{Resource: ref("document", "readme"), Permission: "view", Subject: user("alice")},
		{Resource: ref("document", "readme"), Permission: "view", Subject: user("bob")},
		{Resource: ref("document", "readme"), Permission: "nope", Subject: user("bob")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pairs := bulk.GetPairs()
	if len(pairs) != 3 || pairs[0].GetItem().GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION ||
		pairs[1].GetItem().GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION ||
		codes.Code(pairs[2].GetError().GetCode()) != codes.FailedPrecondition {
		t.Fatalf("CheckBulkPermissions: %v", bulk)
	}

	lr, err := c.LookupResources(ctx, &v1.LookupResourcesRequest{Consistency: at, ResourceObjectType: "document", Permission: "view", Subject: user("alice")})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, r := range receiveAll(t, lr.Recv) {
		docs = append(docs, r.GetResourceObjectId())
	}
	slices.Sort(docs)
	if want := []string{"readme", "roadmap"}; !slices.Equal(docs, want) {
		t.Fatalf("LookupResources for alice: %v, want %v", docs, want)
	}

	ls, err := c.LookupSubjects(ctx, &v1.LookupSubjectsRequest{Consistency: at, Resource: ref("document", "readme"), Permission: "view", SubjectObjectType: "user"})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, r := range receiveAll(t, ls.Recv) {
		users = append(users, r.GetSubject().GetSubjectObjectId())
	}
	if want := []string{"alice"}; !slices.Equal(users, want) {
		t.Fatalf("LookupSubjects of readme: %v, want %v (bob is banned)", users, want)
	}

	ev, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ev.GetUpdates()); got != 4 || ev.GetChangesThrough().GetToken() != w.GetWrittenAt().GetToken() {
		t.Fatalf("Watch of documents: %d updates through %v, want the write's 4 through its token", got, ev.GetChangesThrough())
	}

	exp, err := authzed.NewClientWithExperimentalAPIs(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken(tokenSecret))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	old, err := exp.BulkCheckPermission(ctx, &v1.BulkCheckPermissionRequest{Consistency: at, Items: []*v1.BulkCheckPermissionRequestItem{
		{Resource: ref("document", "other"), Permission: "view", Subject: user("carol")}}})
	if err != nil || len(old.GetPairs()) != 1 || old.GetPairs()[0].GetItem().GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("experimental BulkCheckPermission: %v, %v", old, err)
	}
}
