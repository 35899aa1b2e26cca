package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// authzedSchemaText is the schema the SpiceDB API tests write.
const authzedSchemaText = `use expiration

caveat on_tier(tier string) {
    tier == "gold"
}

definition user {}

definition document {
    relation viewer: user | user with on_tier | user with expiration
    relation owner: user
    permission view = viewer + owner
}
`

// testVersion is the version the SpiceDB API test server reports.
const testVersion = "v9.9.9-test"

// serveAuthzedTest starts a server over an in-memory datastore, with a
// long quantum so only at_least_as_fresh and fully_consistent reads see
// recent writes.
func serveAuthzedTest(t *testing.T) *Server {
	t.Helper()
	return serveTest(t, Config{
		Engine: memoryEngine(t), InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", Quantization: time.Hour, Version: testVersion,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// authzedClient dials srv with the authzed-go client the way SpiceDB
// users do: insecure transport and a bearer token.
func authzedClient(t *testing.T, srv *Server, token string) *authzed.Client {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if token != "" {
		opts = append(opts, grpcutil.WithInsecureBearerToken(token))
	}
	c, err := authzed.NewClient(srv.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// authzedExperimentalClient is authzedClient with the experimental service.
func authzedExperimentalClient(t *testing.T, srv *Server) *authzed.ClientWithExperimental {
	t.Helper()
	c, err := authzed.NewClientWithExperimentalAPIs(srv.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpcutil.WithInsecureBearerToken(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func azObject(typ, id string) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: typ, ObjectId: id}
}

func azUser(id string) *v1.SubjectReference {
	return &v1.SubjectReference{Object: azObject("user", id)}
}

func azDocRel(doc, rel, userID string) *v1.Relationship {
	return &v1.Relationship{Resource: azObject("document", doc), Relation: rel, Subject: azUser(userID)}
}

func azFresh(tok *v1.ZedToken) *v1.Consistency {
	return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: tok}}
}

func azUpdate(op v1.RelationshipUpdate_Operation, r *v1.Relationship) *v1.RelationshipUpdate {
	return &v1.RelationshipUpdate{Operation: op, Relationship: r}
}

// setupAuthzed writes the schema and the tests' relationships through the
// SpiceDB API and returns the write's token.
func setupAuthzed(t *testing.T, c *authzed.Client) *v1.ZedToken {
	t.Helper()
	ctx := context.Background()
	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: authzedSchemaText}); err != nil {
		t.Fatal(err)
	}
	caveated := azDocRel("2", "viewer", "carol")
	caveated.OptionalCaveat = &v1.ContextualizedCaveat{CaveatName: "on_tier"}
	expiring := azDocRel("3", "viewer", "dave")
	expiring.OptionalExpiresAt = timestamppb.New(time.Now().Add(time.Hour))
	resp, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
		azUpdate(v1.RelationshipUpdate_OPERATION_CREATE, azDocRel("1", "viewer", "alice")),
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("1", "owner", "bob")),
		azUpdate(v1.RelationshipUpdate_OPERATION_CREATE, caveated),
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, expiring),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetWrittenAt().GetToken() == "" {
		t.Fatal("WriteRelationships returned no written_at token")
	}
	return resp.GetWrittenAt()
}

func azCheck(t *testing.T, c *authzed.Client, req *v1.CheckPermissionRequest) *v1.CheckPermissionResponse {
	t.Helper()
	resp, err := c.CheckPermission(context.Background(), req)
	if err != nil {
		t.Fatalf("check %v: %v", req, err)
	}
	return resp
}

func TestAuthzedCheckPermission(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupAuthzed(t, c)

	gold, _ := structpb.NewStruct(map[string]any{"tier": "gold"})
	for _, tc := range []struct {
		name    string
		doc     string
		user    string
		context *structpb.Struct
		want    v1.CheckPermissionResponse_Permissionship
		missing []string
	}{
		{"viewer", "1", "alice", nil, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, nil},
		{"owner", "1", "bob", nil, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, nil},
		{"stranger", "1", "mallory", nil, v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION, nil},
		{"caveat without context", "2", "carol", nil, v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION, []string{"tier"}},
		{"caveat satisfied", "2", "carol", gold, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, nil},
		{"expiring, not expired", "3", "dave", nil, v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := azCheck(t, c, &v1.CheckPermissionRequest{
				Consistency: azFresh(tok), Resource: azObject("document", tc.doc), Permission: "view",
				Subject: azUser(tc.user), Context: tc.context,
			})
			if resp.GetPermissionship() != tc.want {
				t.Fatalf("permissionship %v, want %v", resp.GetPermissionship(), tc.want)
			}
			if got := resp.GetPartialCaveatInfo().GetMissingRequiredContext(); !slices.Equal(got, tc.missing) {
				t.Fatalf("missing context %v, want %v", got, tc.missing)
			}
			if resp.GetCheckedAt().GetToken() == "" {
				t.Fatal("no checked_at token")
			}
		})
	}

	// The long quantum keeps minimize_latency at the revision before the
	// writes; fully_consistent sees them.
	resp := azCheck(t, c, &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		Resource:    azObject("document", "1"), Permission: "view", Subject: azUser("alice"),
	})
	if resp.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("fully_consistent check: %v", resp.GetPermissionship())
	}
}

func TestAuthzedReadRelationships(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupAuthzed(t, c)
	ctx := context.Background()

	read := func(req *v1.ReadRelationshipsRequest) []*v1.ReadRelationshipsResponse {
		t.Helper()
		stream, err := c.ReadRelationships(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []*v1.ReadRelationshipsResponse
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
	}

	carol := read(&v1.ReadRelationshipsRequest{Consistency: azFresh(tok), RelationshipFilter: &v1.RelationshipFilter{
		ResourceType:          "document",
		OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: "carol"},
	}})
	if len(carol) != 1 || carol[0].GetRelationship().GetOptionalCaveat().GetCaveatName() != "on_tier" {
		t.Fatalf("carol's relationships: %v", carol)
	}
	dave := read(&v1.ReadRelationshipsRequest{Consistency: azFresh(tok), RelationshipFilter: &v1.RelationshipFilter{
		ResourceType: "document", OptionalResourceId: "3", OptionalRelation: "viewer",
	}})
	if len(dave) != 1 || dave[0].GetRelationship().GetOptionalExpiresAt() == nil {
		t.Fatalf("document 3's viewers: %v", dave)
	}

	// A resource ID prefix, with and without a limit, read and deleted.
	w, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("team-a", "viewer", "x")),
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("team-b", "viewer", "x")),
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("tea", "viewer", "x")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	team := &v1.RelationshipFilter{ResourceType: "document", OptionalResourceIdPrefix: "team-"}
	if got := read(&v1.ReadRelationshipsRequest{Consistency: azFresh(w.GetWrittenAt()), RelationshipFilter: team}); len(got) != 2 {
		t.Fatalf("prefix team-: %v", got)
	}
	if got := read(&v1.ReadRelationshipsRequest{Consistency: azFresh(w.GetWrittenAt()), RelationshipFilter: team, OptionalLimit: 1}); len(got) != 1 ||
		got[0].GetRelationship().GetResource().GetObjectId() != "team-a" {
		t.Fatalf("prefix team-, limit 1: %v", got)
	}
	// Preconditions take a prefix too: team- matches, teams- does not.
	guarded := func(op v1.Precondition_Operation, prefix string) error {
		_, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
			Updates: []*v1.RelationshipUpdate{azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("tea", "viewer", "x"))},
			OptionalPreconditions: []*v1.Precondition{{Operation: op,
				Filter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceIdPrefix: prefix}}},
		})
		return err
	}
	if err := guarded(v1.Precondition_OPERATION_MUST_MATCH, "team-"); err != nil {
		t.Fatalf("must match prefix team-: %v", err)
	}
	wantCode(t, "must not match prefix team-", guarded(v1.Precondition_OPERATION_MUST_NOT_MATCH, "team-"), codes.FailedPrecondition)
	wantCode(t, "must match prefix teams-", guarded(v1.Precondition_OPERATION_MUST_MATCH, "teams-"), codes.FailedPrecondition)
	if err := guarded(v1.Precondition_OPERATION_MUST_NOT_MATCH, "teams-"); err != nil {
		t.Fatalf("must not match prefix teams-: %v", err)
	}
	_, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{OptionalResourceIdPrefix: "team-"}})
	wantCode(t, "delete by prefix without a type", err, codes.InvalidArgument, "relationship_filter.optional_resource_id_prefix")
	del, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: team})
	if err != nil || del.GetDeletionProgress() != v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE || del.GetRelationshipsDeletedCount() != 2 {
		t.Fatalf("delete by prefix: %v, %v", del, err)
	}
	if got := read(&v1.ReadRelationshipsRequest{Consistency: azFresh(del.GetDeletedAt()),
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceIdPrefix: "tea"}}); len(got) != 1 ||
		got[0].GetRelationship().GetResource().GetObjectId() != "tea" {
		t.Fatalf("after deleting prefix team-: %v", got)
	}

	// Paging: two pages of two through optional_limit and optional_cursor.
	filter := &v1.RelationshipFilter{ResourceType: "document"}
	// At the setup's snapshot: four relationships, before the prefix ones.
	atSetup := &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: tok}}
	first := read(&v1.ReadRelationshipsRequest{Consistency: atSetup, RelationshipFilter: filter, OptionalLimit: 2})
	if len(first) != 2 {
		t.Fatalf("first page: %d relationships, want 2", len(first))
	}
	rest := read(&v1.ReadRelationshipsRequest{RelationshipFilter: filter, OptionalCursor: first[1].GetAfterResultCursor()})
	if len(rest) != 2 {
		t.Fatalf("second page: %d relationships, want 2", len(rest))
	}
	seen := map[string]bool{}
	for _, r := range append(first, rest...) {
		k := r.GetRelationship().GetResource().GetObjectId() + "#" + r.GetRelationship().GetRelation()
		if seen[k] {
			t.Fatalf("%s read twice", k)
		}
		seen[k] = true
	}
}

func TestAuthzedDeleteRelationships(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	setupAuthzed(t, c)
	ctx := context.Background()

	doc1 := &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "1"}
	_, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: doc1, OptionalLimit: 1})
	wantCode(t, "delete above the limit", err, codes.InvalidArgument, "found more than 1 relationships to delete and partial deletion was not requested")

	resp, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{
		RelationshipFilter: doc1, OptionalLimit: 1, OptionalAllowPartialDeletions: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeletionProgress() != v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL || resp.GetRelationshipsDeletedCount() != 1 {
		t.Fatalf("partial delete: %v", resp)
	}
	resp, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: doc1})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeletionProgress() != v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE || resp.GetRelationshipsDeletedCount() != 1 {
		t.Fatalf("delete: %v", resp)
	}
	for _, u := range []string{"alice", "bob"} {
		got := azCheck(t, c, &v1.CheckPermissionRequest{
			Consistency: azFresh(resp.GetDeletedAt()), Resource: azObject("document", "1"), Permission: "view", Subject: azUser(u),
		})
		if got.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION {
			t.Fatalf("%s after delete: %v", u, got.GetPermissionship())
		}
	}
}

func TestAuthzedBulkCheckAndLookups(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupAuthzed(t, c)
	ctx := context.Background()

	bulk, err := c.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Consistency: azFresh(tok), Items: []*v1.CheckBulkPermissionsRequestItem{
		{Resource: azObject("document", "1"), Permission: "view", Subject: azUser("alice")},
		{Resource: azObject("document", "1"), Permission: "view", Subject: azUser("mallory")},
		{Resource: azObject("document", "2"), Permission: "view", Subject: azUser("carol")},
		{Resource: azObject("document", "1"), Permission: "edit", Subject: azUser("alice")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []v1.CheckPermissionResponse_Permissionship{
		v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION,
		v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION,
		v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
	}
	if len(bulk.GetPairs()) != 4 {
		t.Fatalf("%d pairs, want 4", len(bulk.GetPairs()))
	}
	for i, w := range want {
		if got := bulk.GetPairs()[i].GetItem().GetPermissionship(); got != w {
			t.Errorf("item %d: %v, want %v", i, got, w)
		}
	}
	if e := bulk.GetPairs()[3].GetError(); codes.Code(e.GetCode()) != codes.FailedPrecondition || !strings.Contains(e.GetMessage(), "edit") {
		t.Errorf("item with an undefined permission: %v", e)
	}

	lr, err := c.LookupResources(ctx, &v1.LookupResourcesRequest{
		Consistency: azFresh(tok), ResourceObjectType: "document", Permission: "view", Subject: azUser("carol"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var resources []string
	for {
		r, err := lr.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetPermissionship() != v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION ||
			!slices.Equal(r.GetPartialCaveatInfo().GetMissingRequiredContext(), []string{"tier"}) {
			t.Errorf("carol's resource %s: %v", r.GetResourceObjectId(), r)
		}
		resources = append(resources, r.GetResourceObjectId())
	}
	if !slices.Equal(resources, []string{"2"}) {
		t.Fatalf("carol's resources %v, want [2]", resources)
	}

	ls, err := c.LookupSubjects(ctx, &v1.LookupSubjectsRequest{
		Consistency: azFresh(tok), Resource: azObject("document", "1"), Permission: "view", SubjectObjectType: "user",
	})
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for {
		r, err := ls.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, r.GetSubject().GetSubjectObjectId())
	}
	slices.Sort(subjects)
	if !slices.Equal(subjects, []string{"alice", "bob"}) {
		t.Fatalf("document 1's viewers %v, want [alice bob]", subjects)
	}
}

// TestAuthzedZedTokensAreZookies checks that one token works on both APIs.
func TestAuthzedZedTokensAreZookies(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	setupAuthzed(t, c)
	cc := dialTest(t, srv)
	ctx := context.Background()

	// pemba.v1 write, SpiceDB check.
	w, err := pb.NewRelationshipServiceClient(cc).WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "document:9#viewer@user:frank"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := azCheck(t, c, &v1.CheckPermissionRequest{
		Consistency: azFresh(&v1.ZedToken{Token: w.GetWrittenAt().GetToken()}),
		Resource:    azObject("document", "9"), Permission: "view", Subject: azUser("frank"),
	})
	if got.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("SpiceDB check after a pemba.v1 write: %v", got.GetPermissionship())
	}

	// SpiceDB write, pemba.v1 check.
	sw, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
		azUpdate(v1.RelationshipUpdate_OPERATION_CREATE, azDocRel("8", "viewer", "gina")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pb.NewPermissionServiceClient(cc).CheckPermission(ctx, &pb.CheckPermissionRequest{
		Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: &pb.Zookie{Token: sw.GetWrittenAt().GetToken()}}},
		Resource:    &pb.ObjectRef{Type: "document", Id: "8"}, Permission: "view",
		Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "gina"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if pc.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("pemba.v1 check after a SpiceDB write: %v", pc.GetPermissionship())
	}
}

func TestAuthzedSchema(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()

	_, err := c.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	wantCode(t, "read before a write", err, codes.NotFound, "no schema")
	_, err = c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: "definition user {"})
	wantCode(t, "bad schema", err, codes.InvalidArgument, "schema")
	setupAuthzed(t, c)
	resp, err := c.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSchemaText() != authzedSchemaText || resp.GetReadAt().GetToken() == "" {
		t.Fatalf("ReadSchema: %v", resp)
	}
	// Dropping a relation that stored relationships use is refused.
	_, err = c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: "definition user {}\ndefinition document {}"})
	wantCode(t, "orphaning schema", err, codes.FailedPrecondition)
}

func TestAuthzedErrors(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupAuthzed(t, c)
	ctx := context.Background()

	check := func(req *v1.CheckPermissionRequest) error {
		_, err := c.CheckPermission(ctx, req)
		return err
	}
	write := func(updates ...*v1.RelationshipUpdate) error {
		_, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"missing resource type", check(&v1.CheckPermissionRequest{Resource: azObject("", "1"), Permission: "view", Subject: azUser("a")}),
			codes.InvalidArgument, "resource.object_type"},
		{"missing subject", check(&v1.CheckPermissionRequest{Resource: azObject("document", "1"), Permission: "view"}),
			codes.InvalidArgument, "subject"},
		{"missing permission", check(&v1.CheckPermissionRequest{Resource: azObject("document", "1"), Subject: azUser("a")}),
			codes.InvalidArgument, "permission"},
		{"undefined definition", check(&v1.CheckPermissionRequest{Resource: azObject("folder", "1"), Permission: "view", Subject: azUser("a")}),
			codes.FailedPrecondition, "folder"},
		{"undefined permission", check(&v1.CheckPermissionRequest{Resource: azObject("document", "1"), Permission: "edit", Subject: azUser("a")}),
			codes.FailedPrecondition, "edit"},
		{"malformed zedtoken", check(&v1.CheckPermissionRequest{Consistency: azFresh(&v1.ZedToken{Token: "nonsense"}),
			Resource: azObject("document", "1"), Permission: "view", Subject: azUser("a")}),
			codes.InvalidArgument, "consistency"},
		{"duplicate create", write(azUpdate(v1.RelationshipUpdate_OPERATION_CREATE, azDocRel("1", "viewer", "alice"))),
			codes.AlreadyExists, ""},
		{"undefined relation", write(azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("1", "editor", "alice"))),
			codes.FailedPrecondition, "editor"},
		{"caveat the relation does not allow", write(azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, &v1.Relationship{
			Resource: azObject("document", "1"), Relation: "owner", Subject: azUser("x"),
			OptionalCaveat: &v1.ContextualizedCaveat{CaveatName: "on_tier"}})),
			codes.FailedPrecondition, "updates[0].relationship.optional_caveat.caveat_name"},
		{"a relationship updated twice", write(azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("6", "viewer", "x")),
			azUpdate(v1.RelationshipUpdate_OPERATION_DELETE, azDocRel("6", "viewer", "x"))),
			codes.InvalidArgument, "updates[1].relationship"},
		{"no updates", write(), codes.InvalidArgument, "updates"},
		{"undefined subject type", write(azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, &v1.Relationship{
			Resource: azObject("document", "1"), Relation: "viewer", Subject: &v1.SubjectReference{Object: azObject("robot", "r")}})),
			codes.FailedPrecondition, "robot"},
		{"no operation", write(&v1.RelationshipUpdate{Relationship: azDocRel("1", "viewer", "x")}),
			codes.InvalidArgument, "updates[0].operation"},
		{"failed precondition", func() error {
			_, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
				Updates: []*v1.RelationshipUpdate{azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("5", "viewer", "x"))},
				OptionalPreconditions: []*v1.Precondition{{Operation: v1.Precondition_OPERATION_MUST_MATCH,
					Filter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "404"}}},
			})
			return err
		}(), codes.FailedPrecondition, ""},
		{"unknown filter type", func() error {
			stream, err := c.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{Consistency: azFresh(tok),
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: "folder"}})
			if err == nil {
				_, err = stream.Recv()
			}
			return err
		}(), codes.FailedPrecondition, "relationship_filter.resource_type"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.name, tc.err, tc.code, tc.msg) })
	}
}

func TestAuthzedUnauthenticated(t *testing.T) {
	srv := serveAuthzedTest(t)
	for name, token := range map[string]string{"no token": "", "wrong token": "not-the-secret"} {
		t.Run(name, func(t *testing.T) {
			c := authzedClient(t, srv, token)
			_, err := c.ReadSchema(context.Background(), &v1.ReadSchemaRequest{})
			wantCode(t, name, err, codes.Unauthenticated)
		})
	}
}

func TestAuthzedServerVersionHeader(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "io.spicedb.requestversion", "true")

	// Asked before any schema is written, as zed version may be: the
	// error carries the header too.
	var early metadata.MD
	_, err := c.ReadSchema(ctx, &v1.ReadSchemaRequest{}, grpc.Header(&early))
	wantCode(t, "read before a write", err, codes.NotFound)
	if got := early.Get("io.spicedb.debug.version"); !slices.Equal(got, []string{testVersion}) {
		t.Fatalf("io.spicedb.debug.version with an error = %v, want %q", got, testVersion)
	}
	setupAuthzed(t, c)

	var plain, asked metadata.MD
	if _, err := c.ReadSchema(context.Background(), &v1.ReadSchemaRequest{}, grpc.Header(&plain)); err != nil {
		t.Fatal(err)
	}
	if got := plain.Get("io.spicedb.debug.version"); len(got) != 0 {
		t.Fatalf("version sent unasked: %v", got)
	}
	if _, err := c.ReadSchema(ctx, &v1.ReadSchemaRequest{}, grpc.Header(&asked)); err != nil {
		t.Fatal(err)
	}
	if got := asked.Get("io.spicedb.debug.version"); !slices.Equal(got, []string{testVersion}) {
		t.Fatalf("io.spicedb.debug.version = %v, want %q", got, testVersion)
	}
}

func TestAuthzedExportBulkRelationships(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupAuthzed(t, c)
	ctx := context.Background()

	export := func(req *v1.ExportBulkRelationshipsRequest) [][]*v1.Relationship {
		t.Helper()
		stream, err := c.ExportBulkRelationships(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var pages [][]*v1.Relationship
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return pages
			}
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, r.GetRelationships())
			if r.GetAfterResultCursor().GetToken() == "" {
				t.Fatal("page without a cursor")
			}
		}
	}
	pages := export(&v1.ExportBulkRelationshipsRequest{Consistency: azFresh(tok), OptionalLimit: 3})
	if len(pages) != 2 || len(pages[0]) != 3 || len(pages[1]) != 1 {
		t.Fatalf("pages of %d, %v", len(pages), pages)
	}
	stream, err := c.ExportBulkRelationships(ctx, &v1.ExportBulkRelationshipsRequest{Consistency: azFresh(tok), OptionalLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	rest := export(&v1.ExportBulkRelationshipsRequest{OptionalCursor: first.GetAfterResultCursor()})
	if len(rest) != 1 || len(rest[0]) != 1 {
		t.Fatalf("resumed export: %v", rest)
	}
	filtered := export(&v1.ExportBulkRelationshipsRequest{Consistency: azFresh(tok),
		OptionalRelationshipFilter: &v1.RelationshipFilter{ResourceType: "document", OptionalRelation: "owner"}})
	if len(filtered) != 1 || len(filtered[0]) != 1 || filtered[0][0].GetSubject().GetObject().GetObjectId() != "bob" {
		t.Fatalf("owners: %v", filtered)
	}
}

func TestAuthzedWatch(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupAuthzed(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stream, err := c.Watch(ctx, &v1.WatchRequest{
		OptionalStartCursor:         tok,
		OptionalRelationshipFilters: []*v1.RelationshipFilter{{ResourceType: "document", OptionalRelation: "owner"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("7", "viewer", "hugo")),
		azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("7", "owner", "ines")),
	}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetUpdates()) != 1 || resp.GetUpdates()[0].GetRelationship().GetSubject().GetObject().GetObjectId() != "ines" ||
		resp.GetChangesThrough().GetToken() == "" {
		t.Fatalf("watch response: %v", resp)
	}

	bad, err := c.Watch(ctx, &v1.WatchRequest{OptionalObjectTypes: []string{"folder"}})
	if err == nil {
		_, err = bad.Recv()
	}
	wantCode(t, "watch of an undefined type", err, codes.FailedPrecondition, "optional_object_types[0]")
}

// TestAuthzedConsistencyModes checks that each SpiceDB consistency mode
// reads the revision it names.
func TestAuthzedConsistencyModes(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	written := setupAuthzed(t, c)
	del, err := c.DeleteRelationships(context.Background(), &v1.DeleteRelationshipsRequest{
		RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "1", OptionalRelation: "viewer"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		consistency *v1.Consistency
		want        v1.CheckPermissionResponse_Permissionship
	}{
		{"at_exact_snapshot before the delete", &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: written}},
			v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION},
		{"at_least_as_fresh as the delete", azFresh(del.GetDeletedAt()), v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
		{"fully_consistent", &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
			v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
		// This server's own writes advance the revision minimize_latency reads.
		{"minimize_latency", &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}},
			v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := azCheck(t, c, &v1.CheckPermissionRequest{Consistency: tc.consistency,
				Resource: azObject("document", "1"), Permission: "viewer", Subject: azUser("alice")})
			if got.GetPermissionship() != tc.want {
				t.Fatalf("%v, want %v", got.GetPermissionship(), tc.want)
			}
		})
	}
}

func TestAuthzedLookupResourcesPaging(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	setupAuthzed(t, c)
	ctx := context.Background()
	var updates []*v1.RelationshipUpdate
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		updates = append(updates, azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel(id, "viewer", "zoe")))
	}
	w, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var cursor *v1.Cursor
	for page := 0; page < 5; page++ {
		stream, err := c.LookupResources(ctx, &v1.LookupResourcesRequest{Consistency: azFresh(w.GetWrittenAt()),
			ResourceObjectType: "document", Permission: "view", Subject: azUser("zoe"), OptionalLimit: 2, OptionalCursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.GetResourceObjectId())
			cursor = r.GetAfterResultCursor()
			n++
		}
		if n < 2 {
			break
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("zoe's documents over pages of two: %v", got)
	}
}

func TestAuthzedExperimentalBulk(t *testing.T) {
	srv := serveAuthzedTest(t)
	tok := setupAuthzed(t, authzedClient(t, srv, testSecret))
	c := authzedExperimentalClient(t, srv)
	ctx := context.Background()

	bulk, err := c.BulkCheckPermission(ctx, &v1.BulkCheckPermissionRequest{Consistency: azFresh(tok), Items: []*v1.BulkCheckPermissionRequestItem{
		{Resource: azObject("document", "1"), Permission: "view", Subject: azUser("alice")},
		{Resource: azObject("document", "1"), Permission: "edit", Subject: azUser("alice")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := bulk.GetPairs()[0].GetItem().GetPermissionship(); got != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		t.Errorf("item 0: %v", got)
	}
	if e := bulk.GetPairs()[1].GetError(); codes.Code(e.GetCode()) != codes.FailedPrecondition {
		t.Errorf("item 1: %v", e)
	}

	stream, err := c.BulkExportRelationships(ctx, &v1.BulkExportRelationshipsRequest{Consistency: azFresh(tok)})
	if err != nil {
		t.Fatal(err)
	}
	page, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(page.GetRelationships()) != 4 || page.GetAfterResultCursor().GetToken() == "" {
		t.Fatalf("export page: %v", page)
	}
	_, err = c.ExperimentalCountRelationships(ctx, &v1.ExperimentalCountRelationshipsRequest{Name: "docs"})
	wantCode(t, "an experimental RPC not served", err, codes.Unimplemented)
}

// TestAuthzedExperimentalSchema checks that each experimental schema RPC
// answers exactly what its stable twin does, field for field.
func TestAuthzedExperimentalSchema(t *testing.T) {
	srv := serveAuthzedTest(t)
	tok := setupAuthzed(t, authzedClient(t, srv, testSecret))
	c := authzedExperimentalClient(t, srv)
	ctx := context.Background()
	at := &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: tok}}
	changed := "definition user {}\ndefinition robot {}\ndefinition document {\n relation viewer: user | robot\n permission view = viewer\n}"
	pairs := []struct {
		name         string
		stable, exp  func() (proto.Message, error)
		wantNonEmpty string
	}{
		{"reflect",
			func() (proto.Message, error) { return c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: at}) },
			func() (proto.Message, error) {
				return c.ExperimentalReflectSchema(ctx, &v1.ExperimentalReflectSchemaRequest{Consistency: at})
			}, "definitions"},
		{"reflect, filtered",
			func() (proto.Message, error) {
				return c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: at,
					OptionalFilters: []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "doc"}}})
			},
			func() (proto.Message, error) {
				return c.ExperimentalReflectSchema(ctx, &v1.ExperimentalReflectSchemaRequest{Consistency: at,
					OptionalFilters: []*v1.ExpSchemaFilter{{OptionalDefinitionNameFilter: "doc"}}})
			}, "definitions"},
		{"diff",
			func() (proto.Message, error) {
				return c.DiffSchema(ctx, &v1.DiffSchemaRequest{Consistency: at, ComparisonSchema: changed})
			},
			func() (proto.Message, error) {
				return c.ExperimentalDiffSchema(ctx, &v1.ExperimentalDiffSchemaRequest{Consistency: at, ComparisonSchema: changed})
			}, "diffs"},
		{"computable permissions",
			func() (proto.Message, error) {
				return c.ComputablePermissions(ctx, &v1.ComputablePermissionsRequest{Consistency: at, DefinitionName: "document", RelationName: "viewer"})
			},
			func() (proto.Message, error) {
				return c.ExperimentalComputablePermissions(ctx, &v1.ExperimentalComputablePermissionsRequest{Consistency: at, DefinitionName: "document", RelationName: "viewer"})
			}, "permissions"},
		{"dependent relations",
			func() (proto.Message, error) {
				return c.DependentRelations(ctx, &v1.DependentRelationsRequest{Consistency: at, DefinitionName: "document", PermissionName: "view"})
			},
			func() (proto.Message, error) {
				return c.ExperimentalDependentRelations(ctx, &v1.ExperimentalDependentRelationsRequest{Consistency: at, DefinitionName: "document", PermissionName: "view"})
			}, "relations"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			stable, err := p.stable()
			if err != nil {
				t.Fatal(err)
			}
			exp, err := p.exp()
			if err != nil {
				t.Fatal(err)
			}
			want, got := asJSON(t, stable), asJSON(t, exp)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("experimental answer\n%v\ndiffers from the stable one\n%v", got, want)
			}
			if v, _ := want[p.wantNonEmpty].([]any); len(v) == 0 {
				t.Fatalf("the stable answer has no %s: %v", p.wantNonEmpty, want)
			}
		})
	}
	_, err := c.ExperimentalDiffSchema(ctx, &v1.ExperimentalDiffSchemaRequest{Consistency: at, ComparisonSchema: "definition {"})
	wantCode(t, "experimental diff of a broken schema", err, codes.InvalidArgument)
}

// asJSON is m's JSON form as generic values.
func asJSON(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
