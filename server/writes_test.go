package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// serveEngine serves engine (which the caller closes) with limits.
func serveEngine(t *testing.T, engine storage.Engine, limits Limits) *Server {
	t.Helper()
	return serveTest(t, Config{
		Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", Limits: limits,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func memoryEngine(t *testing.T) storage.Engine {
	t.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	return engine
}

type writeClients struct {
	schema pb.SchemaServiceClient
	rels   pb.RelationshipServiceClient
}

func clientsOf(t *testing.T, srv *Server) writeClients {
	cc := dialTest(t, srv)
	return writeClients{schema: pb.NewSchemaServiceClient(cc), rels: pb.NewRelationshipServiceClient(cc)}
}

func protoRel(t *testing.T, s string) *pb.Relationship {
	t.Helper()
	return relationshipToProto(graph.MustParseRelationship(s))
}

func touchUpdate(r *pb.Relationship) *pb.RelationshipUpdate {
	return &pb.RelationshipUpdate{Operation: pb.RelationshipUpdate_OPERATION_TOUCH, Relationship: r}
}

func wantCode(t *testing.T, what string, err error, code codes.Code, contains ...string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: %v, want %v", what, err, code)
	}
	for _, c := range contains {
		if !strings.Contains(status.Convert(err).Message(), c) {
			t.Fatalf("%s: message %q does not mention %q", what, status.Convert(err).Message(), c)
		}
	}
}

const editorSchema = "definition user {}\ndefinition doc {\n relation viewer: user\n relation editor: user\n}"
const viewerSchema = "definition user {}\ndefinition doc {\n relation viewer: user\n}"

// TestIdleImportDoesNotStopWrites: an import stream whose client stops
// sending holds nothing other writes wait for, and is ended after the
// idle timeout with the exact count of what it committed.
func TestIdleImportDoesNotStopWrites(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{StreamIdleTimeout: 700 * time.Millisecond, ImportBatchSize: 2})
	c := clientsOf(t, srv)
	ctx := context.Background()
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: editorSchema}); err != nil {
		t.Fatal(err)
	}
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Three relationships: one batch of two commits, one waits for more.
	if err := stream.Send(&pb.ImportRelationshipsRequest{Relationships: []*pb.Relationship{
		protoRel(t, "doc:a#viewer@user:u"), protoRel(t, "doc:b#viewer@user:u"), protoRel(t, "doc:c#viewer@user:u")}}); err != nil {
		t.Fatal(err)
	}
	ack, err := stream.Recv()
	if err != nil || ack.GetImported() != 2 {
		t.Fatalf("first acknowledgement: %v, %v; want 2 imported", ack, err)
	}
	// The stream is now idle. A schema write and a relationship write with
	// short deadlines go through.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := c.schema.WriteSchema(short, &pb.WriteSchemaRequest{Schema: editorSchema + "\n"}); err != nil {
		t.Fatalf("schema write beside an idle import: %v", err)
	}
	if _, err := c.rels.WriteRelationships(short, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:d#editor@user:u"))}}); err != nil {
		t.Fatalf("relationship write beside an idle import: %v", err)
	}
	_, err = stream.Recv()
	wantCode(t, "idle import", err, codes.DeadlineExceeded, "sent nothing", "2 relationships were committed")
	var reported uint64
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*pb.ImportRelationshipsResponse); ok {
			reported = r.GetImported()
		}
	}
	if reported != 2 {
		t.Fatalf("idle import reported %d committed, want 2", reported)
	}
}

// TestImportAcknowledgesEachBatch: the client learns the running count
// after every committed batch, and a bad relationship stops the import
// after exactly the batches before it.
func TestImportAcknowledgesEachBatch(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{ImportBatchSize: 3})
	c := clientsOf(t, srv)
	ctx := context.Background()
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: viewerSchema}); err != nil {
		t.Fatal(err)
	}
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rels []*pb.Relationship
	for i := range 8 {
		rels = append(rels, protoRel(t, fmt.Sprintf("doc:d%d#viewer@user:u", i)))
	}
	rels[7] = protoRel(t, "doc:d7#editor@user:u") // not in the schema
	for i := 0; i < len(rels); i += 2 {
		if err := stream.Send(&pb.ImportRelationshipsRequest{Relationships: rels[i : i+2]}); err != nil {
			break
		}
	}
	_ = stream.CloseSend()
	var acks []uint64
	for {
		resp, err := stream.Recv()
		if err != nil {
			wantCode(t, "import with a bad relationship", err, codes.InvalidArgument, "relationships[7]", "6 relationships were committed")
			break
		}
		acks = append(acks, resp.GetImported())
	}
	if fmt.Sprint(acks) != "[3 6]" {
		t.Fatalf("acknowledged counts %v, want [3 6]", acks)
	}
}

// TestStoredCaveatContextIsTypeChecked: a relationship's caveat context
// must fit the caveat's parameter types on every write path.
func TestStoredCaveatContextIsTypeChecked(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{})
	c := clientsOf(t, srv)
	ctx := context.Background()
	schemaText := "definition user {}\ncaveat in_network(cidrs list<string>, ip ipaddress) {\n ip.in_cidr(cidrs[0])\n}\n" +
		"definition doc {\n relation viewer: user with in_network\n}"
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: schemaText}); err != nil {
		t.Fatal(err)
	}
	bad := protoRel(t, "doc:d#viewer@user:u[in_network]")
	bad.Caveat.Context, _ = structpb.NewStruct(map[string]any{"cidrs": "10.0.0.0/8"})
	_, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(bad)}})
	wantCode(t, "write with a wrong-typed context", err, codes.InvalidArgument,
		"updates[0].relationship.caveat.context", `parameter "cidrs"`, "list")
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&pb.ImportRelationshipsRequest{Relationships: []*pb.Relationship{bad}})
	_ = stream.CloseSend()
	_, err = stream.Recv()
	wantCode(t, "import with a wrong-typed context", err, codes.InvalidArgument, "relationships[0].caveat.context", `parameter "cidrs"`)
}

// TestCaveatParameterTypeChange: a schema write may not change the type
// of a caveat parameter that stored relationships hold values for.
func TestCaveatParameterTypeChange(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{})
	c := clientsOf(t, srv)
	ctx := context.Background()
	withType := func(typ string) string {
		return "definition user {}\ncaveat limit(amount " + typ + ", max int) {\n amount == amount && max == max\n}\n" +
			"definition doc {\n relation viewer: user with limit\n}"
	}
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: withType("int")}); err != nil {
		t.Fatal(err)
	}
	r := protoRel(t, "doc:d#viewer@user:u[limit]")
	r.Caveat.Context, _ = structpb.NewStruct(map[string]any{"amount": 5})
	noValue := protoRel(t, "doc:e#viewer@user:u[limit]")
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(r), touchUpdate(noValue)}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: withType("string")})
	wantCode(t, "type change with stored values", err, codes.FailedPrecondition,
		"caveat limit parameter amount (type int → string) still has 1 relationship(s) storing a value for it")
	diff, err := c.schema.DiffSchema(ctx, &pb.DiffSchemaRequest{Schema: withType("string"),
		Consistency: &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}})
	if err != nil || len(diff.GetBlockers()) != 1 || !strings.Contains(diff.GetBlockers()[0], "caveat limit parameter amount") {
		t.Fatalf("dry run blockers: %v, %v", diff.GetBlockers(), err)
	}
	// The other parameter holds no stored value: changing it is fine.
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: strings.Replace(withType("int"), "max int", "max uint", 1)}); err != nil {
		t.Fatalf("changing a parameter no relationship stores: %v", err)
	}
}

// TestWritesAndSchemaChangesAcrossServers: two servers on one datastore,
// one writing relationships of a relation while the other removes it.
// Ordering lives in the datastore, so no relationship the final schema
// forbids is ever stored.
func TestWritesAndSchemaChangesAcrossServers(t *testing.T) {
	engine := memoryEngine(t)
	writer, changer := clientsOf(t, serveEngine(t, engine, Limits{})), clientsOf(t, serveEngine(t, engine, Limits{}))
	ctx := context.Background()
	for round := range 20 {
		if _, err := changer.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: editorSchema}); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		// The writer stops after a bounded number of writes, so the
		// schema change below always gets through in the end: an
		// unbounded writer can win every race with it on a slow machine.
		wg.Go(func() {
			for i := range 40 {
				select {
				case <-stop:
					return
				default:
				}
				_, err := writer.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{
					touchUpdate(protoRel(t, fmt.Sprintf("doc:r%d_%d#editor@user:u", round, i)))}})
				if err != nil && status.Code(err) != codes.InvalidArgument {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
		// Delete the editors, then remove the relation; writes racing in
		// between make the removal fail, and it is tried again.
		for {
			if _, err := changer.rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{
				Filter: &pb.RelationshipFilter{ResourceType: "doc", Relation: "editor"}}); err != nil {
				t.Fatal(err)
			}
			_, err := changer.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: viewerSchema})
			if err == nil {
				break
			}
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		if stored := storedAtHead(t, engine, storage.Filter{ResourceType: "doc", Relation: "editor"}); len(stored) > 0 {
			t.Fatalf("round %d: %s is stored although the schema has no doc#editor", round, stored[0])
		}
	}
}

// TestSchemaChangedIsAborted: a write that kept losing to schema writes
// is ABORTED, which clients retry.
func TestSchemaChangedIsAborted(t *testing.T) {
	err := toStatus(slog.New(slog.NewTextHandler(io.Discard, nil)), "test", fmt.Errorf("write: %w", storage.ErrSchemaChanged))
	if status.Code(err) != codes.Aborted {
		t.Fatalf("ErrSchemaChanged maps to %v, want ABORTED", status.Code(err))
	}
}

// storedAtHead returns the relationships matching f at engine's head.
func storedAtHead(t *testing.T, engine storage.Engine, f storage.Filter) []graph.Relationship {
	t.Helper()
	ctx := context.Background()
	head, err := engine.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := engine.SnapshotReader(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	var out []graph.Relationship
	for r, err := range reader.QueryRelationships(ctx, f, storage.QueryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestExpirationRequired: on `relation viewer: user with expiration` a
// relationship without an expiration is refused by writes and imports,
// and a schema write that would start requiring one is refused while
// stored relationships have none.
func TestExpirationRequired(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{})
	c := clientsOf(t, srv)
	ctx := context.Background()
	withViewer := func(types string) string {
		return "use expiration\ndefinition user {}\ndefinition doc {\n relation viewer: " + types + "\n}"
	}
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: withViewer("user with expiration")}); err != nil {
		t.Fatal(err)
	}
	bare := protoRel(t, "doc:d#viewer@user:u")
	_, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(bare)}})
	wantCode(t, "write without an expiration", err, codes.InvalidArgument,
		"updates[0].relationship.expiration", "doc#viewer requires an expiration for subject user")
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&pb.ImportRelationshipsRequest{Relationships: []*pb.Relationship{bare}})
	_ = stream.CloseSend()
	_, err = stream.Recv()
	wantCode(t, "import without an expiration", err, codes.InvalidArgument, "relationships[0].expiration", "requires an expiration")
	expiring := protoRel(t, "doc:d#viewer@user:u[expiration:2099-01-01T00:00:00Z]")
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(expiring)}}); err != nil {
		t.Fatalf("write with an expiration: %v", err)
	}
	// Either form is allowed by `user | user with expiration`.
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: withViewer("user | user with expiration")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:e#viewer@user:u"))}}); err != nil {
		t.Fatalf("write without an expiration where either is allowed: %v", err)
	}
	// Requiring an expiration again would orphan doc:e's relationship.
	_, err = c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: withViewer("user with expiration")})
	wantCode(t, "schema requiring an expiration over a stored relationship without one", err, codes.FailedPrecondition,
		"relation doc#viewer with subject type user still has 1 relationship(s)")
}
