package loadtest_test

import (
	"context"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/check/validationfile"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestIdentityPlatformExampleOnServer loads examples/identity-platform into
// a real server over gRPC and checks every assertion of its validation
// file, and every expected subject set with LookupSubjects: the example is
// hand-checked, and this keeps it honest against the engine.
func TestIdentityPlatformExampleOnServer(t *testing.T) {
	const path = "../examples/identity-platform/validation.yaml"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := validationfile.Parse(path, raw, os.ReadFile)
	if err != nil || len(docs) != 1 {
		t.Fatalf("parse %s: %d documents, %v", path, len(docs), err)
	}
	file := docs[0]

	addr, _ := startServer(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer loadtest-secret")
	if _, err := pb.NewSchemaServiceClient(conn).WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: file.Schema}); err != nil {
		t.Fatal(err)
	}
	var updates []*pb.RelationshipUpdate
	for _, r := range file.Relationships {
		updates = append(updates, &pb.RelationshipUpdate{
			Operation:    pb.RelationshipUpdate_OPERATION_TOUCH,
			Relationship: toProto(t, r.Value),
		})
	}
	written, err := pb.NewRelationshipServiceClient(conn).WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates})
	if err != nil {
		t.Fatal(err)
	}
	fresh := &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: written.GetWrittenAt()}}
	perms := pb.NewPermissionServiceClient(conn)

	want := map[validationfile.AssertionKind]pb.Permissionship{
		validationfile.AssertTrue:     pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION,
		validationfile.AssertFalse:    pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION,
		validationfile.AssertCaveated: pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
	}
	checked := 0
	for _, a := range file.Assertions {
		checked++
		req := &pb.CheckPermissionRequest{
			Consistency: fresh, Resource: &pb.ObjectRef{Type: a.Resource.Type, Id: a.Resource.ID},
			Permission: a.Permission, Subject: subjectProto(a.Subject),
		}
		if a.Context != nil {
			if req.Context, err = structpb.NewStruct(a.Context); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := perms.CheckPermission(ctx, req)
		if err != nil {
			t.Errorf("%s %s: %v", a.Kind, a.Text, err)
			continue
		}
		if got := resp.GetPermissionship(); got != want[a.Kind] {
			t.Errorf("%s %s: got %s", a.Kind, a.Text, got)
		}
	}
	if checked < 30 {
		t.Errorf("only %d assertions checked", checked)
	}

	for _, e := range file.Expectations {
		key, res, perm := e.Resource.String()+"#"+e.Permission, e.Resource, e.Permission
		var expected []string
		for _, sub := range e.Subjects {
			expected = append(expected, sub.Subject)
		}
		stream, err := perms.LookupSubjects(ctx, &pb.LookupSubjectsRequest{
			Consistency: fresh, Resource: &pb.ObjectRef{Type: res.Type, Id: res.ID}, Permission: perm, SubjectType: "user",
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			s, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, "user:"+s.GetSubjectId())
		}
		sort.Strings(got)
		sort.Strings(expected)
		if strings.Join(got, " ") != strings.Join(expected, " ") {
			t.Errorf("%s: subjects %v, the file expects %v", key, got, expected)
		}
	}
}

func subjectProto(s graph.SubjectRef) *pb.SubjectRef {
	return &pb.SubjectRef{Object: &pb.ObjectRef{Type: s.Object.Type, Id: s.Object.ID}, Relation: s.Relation}
}

func toProto(t *testing.T, r graph.Relationship) *pb.Relationship {
	t.Helper()
	out := &pb.Relationship{
		Resource: &pb.ObjectRef{Type: r.Resource.Type, Id: r.Resource.ID},
		Relation: r.Relation, Subject: subjectProto(r.Subject),
	}
	if r.Caveat != nil {
		c, err := structpb.NewStruct(r.Caveat.Context)
		if err != nil {
			t.Fatal(err)
		}
		out.Caveat = &pb.Caveat{Name: r.Caveat.Name, Context: c}
	}
	if r.Expiration != nil {
		out.Expiration = timestamppb.New(*r.Expiration)
	}
	return out
}
