package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// Hostile clients against the write path: a stalled import, a schema
// change racing relationship writes on another server, an import cut off
// by a crash.

const editorSchema = `definition user {}
definition doc {
  relation viewer: user
  relation editor: user
}`

const viewerOnlySchema = `definition user {}
definition doc {
  relation viewer: user
}`

// TestHostileIdleImport: an import stream that stops sending holds up no
// other write, and the server ends it after --stream-idle-timeout.
func TestHostileIdleImport(t *testing.T) {
	s := startServer(t, append(datastoreArgs(t, "memory"), "--stream-idle-timeout", "1s")...)
	c := s.client(tokenSecret)
	ctx := context.Background()
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: editorSchema}); err != nil {
		t.Fatal(err)
	}
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.ImportRelationshipsRequest{Relationships: []*pb.Relationship{rel("doc", "a", "viewer", "user", "u")}}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	if _, err := c.schema.WriteSchema(short, &pb.WriteSchemaRequest{Schema: editorSchema + "\n// v2\n"}); err != nil {
		t.Fatalf("schema write beside a stalled import: %v", err)
	}
	if _, err := c.rels.WriteRelationships(short, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touch(rel("doc", "b", "editor", "user", "u"))}}); err != nil {
		t.Fatalf("relationship write beside a stalled import: %v", err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "0 relationships were committed") {
		t.Fatalf("stalled import: %v, want DEADLINE_EXCEEDED reporting 0 committed", err)
	}
}

// TestHostileSchemaRaceAcrossServers: one server writes doc#editor
// relationships while another, on the same PostgreSQL database, deletes
// them and removes the relation. However they interleave, no
// relationship the final schema forbids is stored.
func TestHostileSchemaRaceAcrossServers(t *testing.T) {
	url := pg.NewDatabase(t)
	args := []string{"--datastore", "postgres", "--datastore-url", url, "--auto-migrate"}
	writer := startServer(t, args...).client(tokenSecret)
	changer := startServer(t, args...).client(tokenSecret)
	ctx := context.Background()
	for round := range 5 {
		if _, err := changer.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: editorSchema}); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := writer.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{
					touch(rel("doc", fmt.Sprintf("r%d_%d", round, i), "editor", "user", "u"))}})
				if err != nil && status.Code(err) != codes.InvalidArgument {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
		time.Sleep(20 * time.Millisecond) // let some writes land first (ordering only)
		for {
			if _, err := changer.rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{
				Filter: &pb.RelationshipFilter{ResourceType: "doc", Relation: "editor"}}); err != nil {
				t.Fatal(err)
			}
			_, err := changer.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: viewerOnlySchema})
			if err == nil {
				break
			}
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatal(err)
			}
		}
		close(stop)
		wg.Wait()
		stream, err := writer.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: fully(),
			Filter: &pb.RelationshipFilter{ResourceType: "doc", Relation: "editor"}})
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := stream.Recv(); err == nil {
			t.Fatalf("round %d: %s is stored although the schema has no doc#editor",
				round, relationshipFromWire(resp.GetRelationship()))
		}
	}
}

// TestHostileImportCrash: an import cut off by the server's crash
// reports how many relationships of the file are committed, every one of
// them is stored, and resuming with --skip completes the file.
func TestHostileImportCrash(t *testing.T) {
	s := startServer(t, datastoreArgs(t, "embedded")...)
	ctx := context.Background()
	if _, err := s.client(tokenSecret).schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: editorSchema}); err != nil {
		t.Fatal(err)
	}
	const total = 200_000
	var file bytes.Buffer
	for i := range total {
		fmt.Fprintf(&file, "doc:d%06d#viewer@user:u\n", i)
	}
	path := filepath.Join(t.TempDir(), "rels.txt")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	watch, err := s.client(tokenSecret).watch.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}

	imp := exec.Command(pemba, "import", path)
	imp.Env = append(os.Environ(), "PEMBA_ENDPOINT="+s.grpcAddr, "PEMBA_TOKEN="+tokenSecret)
	var stderr bytes.Buffer
	imp.Stderr = &stderr
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	// The import learns of a commit from the server's acknowledgement,
	// which may trail the watch by a batch or two when the machine is
	// busy: wait for five batches and ask that at least one was
	// acknowledged before the crash.
	for batches := 0; batches < 5; {
		if _, err := watch.Recv(); err != nil {
			t.Fatalf("watch: %v", err)
		}
		batches++
	}
	s.kill9()
	if err := imp.Wait(); err == nil {
		t.Fatalf("import survived the server's crash:\n%s", &stderr)
	}
	m := regexp.MustCompile(`(\d+) relationship\(s\) of the file are committed; resume with --skip (\d+)`).FindStringSubmatch(stderr.String())
	if m == nil || m[1] != m[2] {
		t.Fatalf("import did not report a resume point:\n%s", &stderr)
	}
	committed, _ := strconv.Atoi(m[1])
	if committed < 1000 {
		t.Fatalf("import reported %d committed after at least 5 batches of 1000 were watched", committed)
	}

	s.restart()
	stored := countRelationships(t, s)
	if stored < committed {
		t.Fatalf("import reported %d committed, but only %d are stored", committed, stored)
	}
	if r := s.cli("", "import", "--skip", strconv.Itoa(committed), path); r.code != 0 {
		t.Fatalf("resumed import: %+v", r)
	}
	if stored := countRelationships(t, s); stored != total {
		t.Fatalf("after resuming: %d stored, want %d", stored, total)
	}
}

func countRelationships(t *testing.T, s *server) int {
	t.Helper()
	stream, err := s.client(tokenSecret).rels.ExportRelationships(context.Background(), &pb.ExportRelationshipsRequest{Consistency: fully()})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		n += len(resp.GetRelationships())
	}
}

// TestHostileExpandLimitFlag: --max-expand-nodes bounds an Expand tree.
func TestHostileExpandLimitFlag(t *testing.T) {
	s := startServer(t, append(datastoreArgs(t, "memory"), "--max-expand-nodes", "5")...)
	c := setup(t, s)
	ctx := context.Background()
	var updates []*pb.RelationshipUpdate
	for i := range 10 {
		updates = append(updates, touch(rel("document", "d", "viewer", "user", fmt.Sprintf("u%d", i))))
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates}); err != nil {
		t.Fatal(err)
	}
	_, err := c.perms.ExpandPermission(ctx, &pb.ExpandPermissionRequest{Resource: obj("document", "d"), Permission: "view", Consistency: fully()})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "5") {
		t.Fatalf("expand past --max-expand-nodes: %v, want RESOURCE_EXHAUSTED naming the limit", err)
	}
}
