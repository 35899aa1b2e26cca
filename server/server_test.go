package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

const testSecret = "server-test-secret"

// newTestServer serves a fresh in-memory datastore on loopback ports.
func newTestServer(tb testing.TB, quantum time.Duration) (*Server, storage.Engine) {
	tb.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { engine.Close() }) // after the server's shutdown
	srv := serveTest(tb, Config{
		Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", Quantization: quantum,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return srv, engine
}

// serveTest starts a server with cfg and shuts it down when the test ends.
func serveTest(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	srv, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

type token string

func (t token) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}
func (token) RequireTransportSecurity() bool { return false }

func dialTest(tb testing.TB, srv *Server) *grpc.ClientConn {
	tb.Helper()
	cc, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(token(testSecret)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return cc
}

// newDocServer starts a test server with a long quantum over a datastore
// holding the schema `doc#viewer: user`; meta is the tests' write metadata.
func newDocServer(t *testing.T) (*Server, storage.Engine, storage.WriteMetadata) {
	t.Helper()
	srv, engine := newTestServer(t, time.Hour)
	meta := storage.WriteMetadata{Actor: "t"}
	if _, err := engine.WriteSchema(context.Background(), storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}\ndefinition doc {\n relation viewer: user\n}"}, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	return srv, engine, meta
}

func TestShutdownEndsWatch(t *testing.T) {
	srv, _ := newTestServer(t, time.Second)
	cc := dialTest(t, srv)
	stream, err := pb.NewWatchServiceClient(cc).Watch(context.Background(), &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the server is inside the Watch handler.
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	_, err = stream.Recv()
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("watch after shutdown: %v, want UNAVAILABLE", err)
	}
	<-done
}

// BenchmarkCheckGRPC measures one CheckPermission over a loopback gRPC
// connection against an in-memory datastore: a grant through a group,
// minimize_latency (so the check cache is warm after the first call).
func BenchmarkCheckGRPC(b *testing.B) {
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
	client := pb.NewPermissionServiceClient(dialTest(b, srv))
	req := &pb.CheckPermissionRequest{Resource: &pb.ObjectRef{Type: "doc", Id: "d"}, Permission: "view",
		Subject:     &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "alice"}},
		Consistency: &pb.Consistency{Requirement: &pb.Consistency_MinimizeLatency{MinimizeLatency: true}}}
	b.ReportAllocs()
	b.RunParallel(func(pb_ *testing.PB) {
		for pb_.Next() {
			resp, err := client.CheckPermission(ctx, req)
			if err != nil || resp.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
				b.Errorf("check: %v %v", resp.GetPermissionship(), err)
				return
			}
		}
	})
}
