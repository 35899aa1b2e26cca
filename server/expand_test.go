package server

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

const groupSchema = "definition user {}\ndefinition group {\n relation member: user | group#member\n}"

// importRels stores n relationships made by rel(i), in large batches.
func importRels(t *testing.T, engine storage.Engine, n int, rel func(i int) string) {
	t.Helper()
	seq := func(yield func(graph.Relationship, error) bool) {
		for i := range n {
			if !yield(graph.MustParseRelationship(rel(i)), nil) {
				return
			}
		}
	}
	if _, err := engine.Import(context.Background(), iter.Seq2[graph.Relationship, error](seq), storage.ImportOptions{BatchSize: 10000, Metadata: storage.WriteMetadata{Actor: "t"}}); err != nil {
		t.Fatal(err)
	}
}

func expandGroup(t *testing.T, client pb.PermissionServiceClient, id string) (*pb.ExpandPermissionResponse, error) {
	t.Helper()
	return client.ExpandPermission(context.Background(), &pb.ExpandPermissionRequest{Consistency: fullyConsistent(),
		Resource: objRef("group", id), Permission: "member"})
}

// wantExhausted requires a RESOURCE_EXHAUSTED whose message contains every
// one of parts.
func wantExhausted(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("%s: %v, want RESOURCE_EXHAUSTED", what, err)
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("%s: message %q does not mention %q", what, st.Message(), p)
		}
	}
}

// TestExpandNodeLimit: a tree larger than the node limit is refused with
// an error naming the limit and LookupSubjects, before it is built.
func TestExpandNodeLimit(t *testing.T) {
	_, engine, cc := newConfiguredServer(t, check.Config{MaxExpandNodes: 100}, groupSchema)
	importRels(t, engine, 99, func(i int) string { return fmt.Sprintf("group:fits#member@user:u%d", i) })
	importRels(t, engine, 100, func(i int) string { return fmt.Sprintf("group:wide#member@user:u%d", i) })
	client := pb.NewPermissionServiceClient(cc)
	resp, err := expandGroup(t, client, "fits") // 1 relation node + 99 leaves
	if err != nil || len(resp.GetTree().GetChildren()) != 99 {
		t.Fatalf("expand a tree of 100 nodes: %d leaves, %v", len(resp.GetTree().GetChildren()), err)
	}
	_, err = expandGroup(t, client, "wide")
	wantExhausted(t, "expand a tree of 101 nodes", err, "100 nodes", "LookupSubjects")
}

// TestExpandReplySize: a tree within the node limit whose reply would not
// fit the 4 MiB a gRPC client receives by default is refused by the
// server with an error naming the limit, not left to fail in the client.
func TestExpandReplySize(t *testing.T) {
	_, engine, cc := newSchemaServer(t, groupSchema)
	long := strings.Repeat("x", 1000)
	importRels(t, engine, 5000, func(i int) string { return fmt.Sprintf("group:wide#member@user:%s%d", long, i) })
	_, err := expandGroup(t, pb.NewPermissionServiceClient(cc), "wide")
	wantExhausted(t, "expand a 5 MB tree", err, fmt.Sprint(MaxExpandReplyBytes), "LookupSubjects")
}

// TestExpandNesting: with a very large max depth, a long chain of nested
// groups would nest the reply deeper than protobuf decoders accept; the
// server refuses it with an error naming the limit.
func TestExpandNesting(t *testing.T) {
	_, engine, cc := newConfiguredServer(t, check.Config{MaxDepth: 100000}, groupSchema)
	importRels(t, engine, 6000, func(i int) string { return fmt.Sprintf("group:g%d#member@group:g%d#member", i, i+1) })
	_, err := expandGroup(t, pb.NewPermissionServiceClient(cc), "g0")
	wantExhausted(t, "expand a chain of 6000 groups", err, fmt.Sprint(maxExpandNesting), "levels")
}
