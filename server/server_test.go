package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
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
	srv, err := New(Config{
		Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", Quantization: quantum,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
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
		engine.Close()
	})
	return srv, engine
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

func TestResolveConsistency(t *testing.T) {
	srv, engine, meta := newDocServer(t)
	ctx := context.Background()
	write := func() storage.Revision {
		rev, err := engine.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
			Relationship: graph.MustParseRelationship(fmt.Sprintf("doc:d%d#viewer@user:u", time.Now().UnixNano()))}}})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	r1 := write()
	quantized, err := srv.revs.resolve(ctx, nil, "consistency")
	if err != nil || quantized != r1 {
		t.Fatalf("first minimize_latency read: %d, %v; want %d", quantized, err, r1)
	}
	r2 := write()
	for _, c := range []struct {
		name string
		c    *pb.Consistency
		want storage.Revision
	}{
		{"minimize_latency keeps the quantized head", &pb.Consistency{Requirement: &pb.Consistency_MinimizeLatency{MinimizeLatency: true}}, r1},
		{"at_least_as_fresh an older zookie takes the cached head", &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: srv.revs.zookie(r1 - 1)}}, r1},
		{"at_least_as_fresh a newer zookie reads at its own revision", &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: unnoted(srv, r2)}}, r2},
		{"at_exact_snapshot", &pb.Consistency{Requirement: &pb.Consistency_AtExactSnapshot{AtExactSnapshot: srv.revs.zookie(r1 - 1)}}, r1 - 1},
		{"fully_consistent", &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}, r2},
	} {
		got, err := srv.revs.resolve(ctx, c.c, "consistency")
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	_, err = srv.revs.resolve(ctx, &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: unnoted(srv, r2+10)}}, "consistency")
	if !errors.Is(err, storage.ErrRevisionUnknown) {
		t.Errorf("at_least_as_fresh beyond the head: %v, want ErrRevisionUnknown", err)
	}
}

// unnoted encodes a zookie for rev as another server would: unlike
// revisions.zookie, it does not tell this server that rev is committed.
func unnoted(srv *Server, rev storage.Revision) *pb.Zookie {
	return &pb.Zookie{Token: srv.revs.zookies.Encode(rev)}
}

// TestAtLeastAsFreshOwnZookie: a zookie this server issued names a
// committed revision, which at_least_as_fresh reads at without asking the
// datastore for its head.
func TestAtLeastAsFreshOwnZookie(t *testing.T) {
	srv, engine, meta := newDocServer(t)
	ctx := context.Background()
	if _, err := srv.revs.resolve(ctx, nil, "consistency"); err != nil { // caches the head for the quantum
		t.Fatal(err)
	}
	rev, err := engine.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
		Relationship: graph.MustParseRelationship("doc:d#viewer@user:u")}}})
	if err != nil {
		t.Fatal(err)
	}
	z := srv.revs.zookie(rev) // as WriteRelationships answers
	heads := &headCounter{Engine: srv.revs.engine}
	srv.revs.engine = heads
	got, err := srv.revs.resolve(ctx, &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: z}}, "consistency")
	if err != nil || got != rev {
		t.Fatalf("at_least_as_fresh this server's own zookie: %d, %v; want %d", got, err, rev)
	}
	if n := heads.calls.Load(); n != 0 {
		t.Errorf("resolving this server's own zookie read the head %d times, want 0", n)
	}
	// Another server's zookie for the same revision needs a head read.
	srv.revs.committed.Store(0)
	if got, err := srv.revs.resolve(ctx, &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: unnoted(srv, rev)}}, "consistency"); err != nil || got != rev {
		t.Fatalf("at_least_as_fresh another server's zookie: %d, %v; want %d", got, err, rev)
	}
	if n := heads.calls.Load(); n == 0 {
		t.Errorf("another server's zookie was accepted without reading the head")
	}
}

// headCounter counts HeadRevision calls.
type headCounter struct {
	storage.Engine
	calls atomic.Int64
}

func (h *headCounter) HeadRevision(ctx context.Context) (storage.Revision, error) {
	h.calls.Add(1)
	return h.Engine.HeadRevision(ctx)
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
		Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "alice"}}}
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

// TestAtLeastAsFreshAfterStaleSharedHead: a request carrying a write's
// zookie may join a shared head read that began before the write
// committed; it must still be answered at or after the write, never
// refused as an unknown revision.
func TestAtLeastAsFreshAfterStaleSharedHead(t *testing.T) {
	srv, engine, meta := newDocServer(t)
	ctx := context.Background()
	stale, err := srv.revs.resolve(ctx, nil, "consistency") // caches the head for the quantum
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	go srv.revs.fetch.Do("head", func() (any, error) { // a head read already in flight
		close(started)
		<-release
		return stale, nil
	})
	<-started
	rev, err := engine.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
		Relationship: graph.MustParseRelationship("doc:d#viewer@user:u")}}})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rev storage.Revision
		err error
	}
	done := make(chan result)
	go func() {
		got, err := srv.revs.resolve(ctx, &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: unnoted(srv, rev)}}, "consistency")
		done <- result{got, err}
	}()
	time.Sleep(50 * time.Millisecond) // let resolve join the in-flight read (ordering only; nothing is timed)
	close(release)
	if got := <-done; got.err != nil || got.rev < rev {
		t.Fatalf("at_least_as_fresh its own write's zookie: %d, %v; want >= %d", got.rev, got.err, rev)
	}
}
