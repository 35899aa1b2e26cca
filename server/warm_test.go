package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// tierSchema has one shared set to warm: tier#clearance, which an arrow
// reaches from every document.
const tierSchema = `definition user {}
definition team {
	relation member: user
}
definition tier {
	relation cleared_team: team
	permission clearance = cleared_team->member
}
definition doc {
	relation tier: tier
	relation viewer: user
	permission read = viewer & tier->clearance
}`

// tierRelationships give tier:t's clearance one member.
var tierRelationships = []string{"tier:t#cleared_team@team:a", "team:a#member@user:u", "doc:d#tier@tier:t", "doc:d#viewer@user:u"}

// TestImportWarmsSharedSets: an import that committed relationships,
// through either API and even one stopped by an error, warms the shared
// subject sets again.
func TestImportWarmsSharedSets(t *testing.T) {
	pembaImport := func(t *testing.T, srv *Server, rels []string) error {
		stream, err := clientsOf(t, srv).rels.ImportRelationships(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var msg pb.ImportRelationshipsRequest
		for _, r := range rels {
			msg.Relationships = append(msg.Relationships, protoRel(t, r))
		}
		if err := stream.Send(&msg); err != nil {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	authzedImport := func(t *testing.T, srv *Server, rels []string) error {
		stream, err := authzedClient(t, srv, testSecret).ImportBulkRelationships(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var msg v1.ImportBulkRelationshipsRequest
		for _, r := range rels {
			msg.Relationships = append(msg.Relationships, azRel(t, r))
		}
		if err := stream.Send(&msg); err != nil {
			t.Fatal(err)
		}
		_, err = stream.CloseAndRecv()
		return err
	}
	for _, tc := range []struct {
		name     string
		rels     []string
		doImport func(*testing.T, *Server, []string) error
		code     codes.Code // of the import
	}{
		{"pemba.v1", tierRelationships, pembaImport, codes.OK},
		{"authzed.api.v1", tierRelationships, authzedImport, codes.OK},
		// Batches of two: the first two commit, the third stops it.
		{"stopped after a batch", append(append([]string{}, tierRelationships[:2]...), "doc:d#editor@user:u"), pembaImport, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveTest(t, Config{
				Engine: memoryEngine(t), InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
				GRPCAddr: "127.0.0.1:0", Limits: Limits{ImportBatchSize: 2}, WarmSetsWait: time.Minute,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if _, err := clientsOf(t, srv).schema.WriteSchema(context.Background(), &pb.WriteSchemaRequest{Schema: tierSchema}); err != nil {
				t.Fatal(err)
			}
			before := srv.checker.Stats().SetsWarmed // nothing to warm at start: no tier yet
			err := tc.doImport(t, srv, tc.rels)
			if code := status.Code(err); code != tc.code {
				t.Fatalf("import: %v, want %v", err, tc.code)
			}
			deadline := time.Now().Add(30 * time.Second)
			for srv.checker.Stats().SetsWarmed == before {
				if time.Now().After(deadline) {
					t.Fatal("no set warmed 30s after the import")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
