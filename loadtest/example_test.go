package loadtest_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestIdentityPlatformExampleOnServer loads examples/identity-platform into
// a real server over gRPC and checks every assertion of its validation
// file, and every expected subject set with LookupSubjects: the example is
// hand-checked, and this keeps it honest against the engine.
func TestIdentityPlatformExampleOnServer(t *testing.T) {
	const dir = "../examples/identity-platform/"
	raw, err := os.ReadFile(dir + "validation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		SchemaFile    string              `yaml:"schemaFile"`
		Relationships string              `yaml:"relationships"`
		Assertions    map[string][]string `yaml:"assertions"`
		Validation    map[string][]string `yaml:"validation"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	schemaText, err := os.ReadFile(dir + file.SchemaFile)
	if err != nil {
		t.Fatal(err)
	}

	addr, _ := startServer(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer loadtest-secret")
	if _, err := pb.NewSchemaServiceClient(conn).WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: string(schemaText)}); err != nil {
		t.Fatal(err)
	}
	var updates []*pb.RelationshipUpdate
	for _, line := range strings.Split(file.Relationships, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		updates = append(updates, &pb.RelationshipUpdate{
			Operation:    pb.RelationshipUpdate_OPERATION_TOUCH,
			Relationship: toProto(t, graph.MustParseRelationship(line)),
		})
	}
	written, err := pb.NewRelationshipServiceClient(conn).WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates})
	if err != nil {
		t.Fatal(err)
	}
	fresh := &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: written.GetWrittenAt()}}
	perms := pb.NewPermissionServiceClient(conn)

	want := map[string]pb.Permissionship{
		"assertTrue":     pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION,
		"assertFalse":    pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION,
		"assertCaveated": pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
	}
	checked := 0
	for kind, list := range file.Assertions {
		for _, a := range list {
			checked++
			relText, ctxText, _ := strings.Cut(a, " with ")
			r := graph.MustParseRelationship(relText)
			req := &pb.CheckPermissionRequest{
				Consistency: fresh, Resource: &pb.ObjectRef{Type: r.Resource.Type, Id: r.Resource.ID},
				Permission: r.Relation, Subject: subjectProto(r.Subject),
			}
			if ctxText != "" {
				var m map[string]any
				if err := json.Unmarshal([]byte(ctxText), &m); err != nil {
					t.Fatalf("%s %q: context: %v", kind, a, err)
				}
				if req.Context, err = structpb.NewStruct(m); err != nil {
					t.Fatal(err)
				}
			}
			resp, err := perms.CheckPermission(ctx, req)
			if err != nil {
				t.Errorf("%s %s: %v", kind, a, err)
				continue
			}
			if got := resp.GetPermissionship(); got != want[kind] {
				t.Errorf("%s %s: got %s", kind, a, got)
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d assertions checked", checked)
	}

	for key, lines := range file.Validation {
		resText, perm, _ := strings.Cut(key, "#")
		res, err := graph.ParseObjectRef(resText)
		if err != nil {
			t.Fatal(err)
		}
		var expected []string
		for _, l := range lines {
			expected = append(expected, strings.TrimPrefix(strings.SplitN(l, "]", 2)[0], "["))
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
