package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// newSchemaServer starts a test server (long quantum) over a datastore
// holding schemaText and rels, and returns a connection to it.
func newSchemaServer(t *testing.T, schemaText string, rels ...string) (*Server, storage.Engine, *grpc.ClientConn) {
	t.Helper()
	return newConfiguredServer(t, check.Config{}, schemaText, rels...)
}

// newConfiguredServer is newSchemaServer with a query engine configuration.
func newConfiguredServer(t *testing.T, cfg check.Config, schemaText string, rels ...string) (*Server, storage.Engine, *grpc.ClientConn) {
	t.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() }) // after the server's shutdown
	srv := serveTest(t, Config{
		Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", Quantization: time.Hour, Check: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx := context.Background()
	meta := storage.WriteMetadata{Actor: "t"}
	if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: schemaText}, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	if len(rels) > 0 {
		var muts []storage.Mutation
		for _, r := range rels {
			muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(r)})
		}
		if _, err := engine.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	return srv, engine, dialTest(t, srv)
}

func objRef(typ, id string) *pb.ObjectRef { return &pb.ObjectRef{Type: typ, Id: id} }

func subRef(typ, id string) *pb.SubjectRef { return &pb.SubjectRef{Object: objRef(typ, id)} }

func fullyConsistent() *pb.Consistency {
	return &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}
}

// drainStream receives until the stream ends and returns the first error
// other than io.EOF.
func drainStream[T any](recv func() (T, error)) ([]T, error) {
	var out []T
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

const caveatSchema = `
caveat at_least(level int, min int) { level >= min }
caveat from_office(ips list<ipaddress>) { ips.all(ip, ip.in_cidr("10.0.0.0/8")) }
definition user {}
definition doc {
  relation viewer: user with at_least | user with from_office
  permission view = viewer
}`

// TestWrongTypedCaveatContext: a request context whose value does not
// have the type a caveat declares for the parameter is the client's
// error, named by the request field and the parameter, on every query.
func TestWrongTypedCaveatContext(t *testing.T) {
	_, _, cc := newSchemaServer(t, caveatSchema,
		`doc:a#viewer@user:ann[at_least:{"min":3}]`,
		`doc:b#viewer@user:bob[from_office]`)
	client := pb.NewPermissionServiceClient(cc)
	ctx := context.Background()
	for _, c := range []struct {
		name, user, param string
		context           map[string]any
	}{
		{"int given a string", "ann", `"level"`, map[string]any{"level": "abc"}},
		{"list<ipaddress> given a string", "bob", `"ips"`, map[string]any{"ips": "10.0.0.1"}},
		{"list<ipaddress> given a bad address", "bob", `"ips"`, map[string]any{"ips": []any{"10.0.0.1", "nope"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reqCtx, err := structpb.NewStruct(c.context)
			if err != nil {
				t.Fatal(err)
			}
			want := func(what string, err error, field string) {
				t.Helper()
				st := status.Convert(err)
				if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), field) || !strings.Contains(st.Message(), c.param) {
					t.Errorf("%s: %v; want INVALID_ARGUMENT naming %s and parameter %s", what, err, field, c.param)
				}
			}
			doc := map[string]string{"ann": "a", "bob": "b"}[c.user]
			_, err = client.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
				Resource: objRef("doc", doc), Permission: "view", Subject: subRef("user", c.user), Context: reqCtx})
			want("CheckPermission", err, "context")

			bulk, err := client.BulkCheckPermission(ctx, &pb.BulkCheckPermissionRequest{Consistency: fullyConsistent(),
				Items: []*pb.BulkCheckItem{{Resource: objRef("doc", doc), Permission: "view", Subject: subRef("user", c.user), Context: reqCtx}}})
			if err != nil {
				t.Fatalf("BulkCheckPermission: %v", err)
			}
			item := bulk.GetResults()[0].GetError()
			want("BulkCheckPermission item", status.Error(codes.Code(item.GetCode()), item.GetMessage()), "items[0].context")

			lr, err := client.LookupResources(ctx, &pb.LookupResourcesRequest{Consistency: fullyConsistent(),
				ResourceType: "doc", Permission: "view", Subject: subRef("user", c.user), Context: reqCtx})
			if err == nil {
				_, err = drainStream(lr.Recv)
			}
			want("LookupResources", err, "context")

			ls, err := client.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Consistency: fullyConsistent(),
				Resource: objRef("doc", doc), Permission: "view", SubjectType: "user", Context: reqCtx})
			if err == nil {
				_, err = drainStream(ls.Recv)
			}
			want("LookupSubjects", err, "context")
		})
	}
}
