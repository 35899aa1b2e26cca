package server

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"
)

// serveAuthzedWatchTest is serveAuthzedTest with checkpoints every
// interval.
func serveAuthzedWatchTest(t *testing.T, interval time.Duration) *Server {
	t.Helper()
	return serveTest(t, Config{
		Engine: memoryEngine(t), InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: "127.0.0.1:0", Quantization: time.Hour, Version: testVersion, WatchCheckpointInterval: interval,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

// watchAuthzed opens a Watch; the stream ends with the test.
func watchAuthzed(t *testing.T, c *authzed.Client, req *v1.WatchRequest) v1.WatchService_WatchClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := c.Watch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

// recvAuthzed receives the next response, failing the test on an error.
func recvAuthzed(t *testing.T, stream v1.WatchService_WatchClient) *v1.WatchResponse {
	t.Helper()
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// writeAuthzed applies updates and returns the write's token.
func writeAuthzed(t *testing.T, c *authzed.Client, updates ...*v1.RelationshipUpdate) *v1.ZedToken {
	t.Helper()
	resp, err := c.WriteRelationships(context.Background(), &v1.WriteRelationshipsRequest{Updates: updates})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetWrittenAt()
}

func touch(resource *v1.ObjectReference, rel string, subject *v1.SubjectReference) *v1.RelationshipUpdate {
	return azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, &v1.Relationship{Resource: resource, Relation: rel, Subject: subject})
}

// updateIDs lists the resource IDs of a response's updates.
func updateIDs(resp *v1.WatchResponse) []string {
	var out []string
	for _, u := range resp.GetUpdates() {
		out = append(out, u.GetRelationship().GetResource().GetObjectType()+":"+u.GetRelationship().GetResource().GetObjectId())
	}
	return out
}

func TestAuthzedWatchCheckpoints(t *testing.T) {
	srv := serveAuthzedWatchTest(t, 20*time.Millisecond)
	c := authzedClient(t, srv, testSecret)
	start := setupAuthzed(t, c)

	stream := watchAuthzed(t, c, &v1.WatchRequest{OptionalStartCursor: start, OptionalUpdateKinds: []v1.WatchKind{
		v1.WatchKind_WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES, v1.WatchKind_WATCH_KIND_INCLUDE_CHECKPOINTS}})
	// Nothing has changed since the start: a checkpoint there.
	first := recvAuthzed(t, stream)
	if !first.GetIsCheckpoint() || len(first.GetUpdates()) > 0 || first.GetChangesThrough().GetToken() != start.GetToken() {
		t.Fatalf("first response: %v, want a checkpoint at %s", first, start.GetToken())
	}
	written := writeAuthzed(t, c, azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("8", "viewer", "jo")))
	// Checkpoints may come before the change; none passes it.
	for {
		resp := recvAuthzed(t, stream)
		if resp.GetIsCheckpoint() {
			if resp.GetChangesThrough().GetToken() != start.GetToken() {
				t.Fatalf("checkpoint %v before the change, want one at the start", resp)
			}
			continue
		}
		if len(resp.GetUpdates()) != 1 || resp.GetChangesThrough().GetToken() != written.GetToken() {
			t.Fatalf("change: %v, want the write at %s", resp, written.GetToken())
		}
		break
	}
	if cp := recvAuthzed(t, stream); !cp.GetIsCheckpoint() || cp.GetChangesThrough().GetToken() != written.GetToken() {
		t.Fatalf("checkpoint after the change: %v, want one at %s", cp, written.GetToken())
	}

	// Checkpoints alone: changes advance them but are not sent.
	only := watchAuthzed(t, c, &v1.WatchRequest{OptionalStartCursor: written,
		OptionalUpdateKinds: []v1.WatchKind{v1.WatchKind_WATCH_KIND_INCLUDE_CHECKPOINTS}})
	recvAuthzed(t, only)
	later := writeAuthzed(t, c, azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("9", "viewer", "jo")))
	for {
		resp := recvAuthzed(t, only)
		if !resp.GetIsCheckpoint() || len(resp.GetUpdates()) > 0 {
			t.Fatalf("response %v of a checkpoint-only watch", resp)
		}
		if resp.GetChangesThrough().GetToken() == later.GetToken() {
			break
		}
	}
}

func TestAuthzedWatchSchemaUpdates(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	start := setupAuthzed(t, c)
	ctx := context.Background()

	schemaOnly := watchAuthzed(t, c, &v1.WatchRequest{OptionalStartCursor: start,
		OptionalUpdateKinds: []v1.WatchKind{v1.WatchKind_WATCH_KIND_INCLUDE_SCHEMA_UPDATES}})
	both := watchAuthzed(t, c, &v1.WatchRequest{OptionalStartCursor: start, OptionalUpdateKinds: []v1.WatchKind{
		v1.WatchKind_WATCH_KIND_INCLUDE_SCHEMA_UPDATES, v1.WatchKind_WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES}})
	writeAuthzed(t, c, azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azDocRel("8", "viewer", "jo")))
	w, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: authzedSchemaText + "\ndefinition folder {}\n"})
	if err != nil {
		t.Fatal(err)
	}
	if resp := recvAuthzed(t, schemaOnly); !resp.GetSchemaUpdated() || len(resp.GetUpdates()) > 0 ||
		resp.GetChangesThrough().GetToken() != w.GetWrittenAt().GetToken() {
		t.Fatalf("schema-only watch: %v, want the schema write alone", resp)
	}
	if resp := recvAuthzed(t, both); resp.GetSchemaUpdated() || len(resp.GetUpdates()) != 1 {
		t.Fatalf("watch of both, first response: %v, want the relationship", resp)
	}
	if resp := recvAuthzed(t, both); !resp.GetSchemaUpdated() || len(resp.GetUpdates()) > 0 {
		t.Fatalf("watch of both, second response: %v, want the schema", resp)
	}
}

// TestAuthzedWatchStartAndFilters checks optional_start_cursor and the
// object-type and relationship filters, each alone.
func TestAuthzedWatchStartAndFilters(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	base := writeReflectSchema(t, c)
	doc, folder, team := azObject("document", "d1"), azObject("folder", "f1"), azObject("team", "t1")
	first := writeAuthzed(t, c, touch(doc, "viewer", azUser("a")))
	second := writeAuthzed(t, c, touch(folder, "viewer", azUser("b")))

	// From a cursor: the changes after it, in order, and nothing before.
	from := watchAuthzed(t, c, &v1.WatchRequest{OptionalStartCursor: first})
	if resp := recvAuthzed(t, from); len(resp.GetUpdates()) != 1 || updateIDs(resp)[0] != "folder:f1" ||
		resp.GetChangesThrough().GetToken() != second.GetToken() {
		t.Fatalf("watch from the first write: %v", resp)
	}
	from0 := watchAuthzed(t, c, &v1.WatchRequest{OptionalStartCursor: base})
	for i, want := range []string{"document:d1", "folder:f1"} {
		if resp := recvAuthzed(t, from0); len(resp.GetUpdates()) != 1 || updateIDs(resp)[0] != want {
			t.Fatalf("watch from the schema write, response %d: %v, want %s", i, resp, want)
		}
	}

	for _, tc := range []struct {
		name string
		req  *v1.WatchRequest
		want []string
	}{
		{"object types", &v1.WatchRequest{OptionalObjectTypes: []string{"folder", "team"}}, []string{"folder:f2", "team:t1"}},
		{"relation", &v1.WatchRequest{OptionalRelationshipFilters: []*v1.RelationshipFilter{
			{ResourceType: "document", OptionalRelation: "owner"}}}, []string{"document:d2"}},
		{"either filter", &v1.WatchRequest{OptionalRelationshipFilters: []*v1.RelationshipFilter{
			{ResourceType: "document", OptionalResourceId: "d3"}, {ResourceType: "team"}}}, []string{"document:d3", "team:t1"}},
		{"subject filter", &v1.WatchRequest{OptionalRelationshipFilters: []*v1.RelationshipFilter{
			{ResourceType: "document", OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "team",
				OptionalRelation: &v1.SubjectFilter_RelationFilter{Relation: "member"}}}}}, []string{"document:d4"}},
		{"ID prefix", &v1.WatchRequest{OptionalRelationshipFilters: []*v1.RelationshipFilter{
			{ResourceType: "document", OptionalResourceIdPrefix: "d3"}}}, []string{"document:d3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.OptionalStartCursor = second
			// Each case writes relationships of its own subject.
			u := azUser("u" + strings.ReplaceAll(tc.name, " ", "_"))
			stream := watchAuthzed(t, c, tc.req)
			// One write with a relationship for each filter; the end marker
			// tells the stream has passed it.
			member := &v1.SubjectReference{Object: azObject("team", u.GetObject().GetObjectId()), OptionalRelation: "member"}
			writeAuthzed(t, c,
				touch(doc, "viewer", u),
				touch(azObject("document", "d2"), "owner", u),
				touch(azObject("document", "d3"), "viewer", u),
				touch(azObject("document", "d4"), "viewer", member),
				touch(azObject("folder", "f2"), "viewer", u),
				touch(team, "member", u),
			)
			resp := recvAuthzed(t, stream)
			if got := updateIDs(resp); !slices.Equal(got, tc.want) {
				t.Errorf("updates %v, want %v", got, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name string
		req  *v1.WatchRequest
		code codes.Code
		msg  string
	}{
		{"malformed cursor", &v1.WatchRequest{OptionalStartCursor: &v1.ZedToken{Token: "nonsense"}}, codes.InvalidArgument, "optional_start_cursor"},
		{"types and filters", &v1.WatchRequest{OptionalObjectTypes: []string{"document"},
			OptionalRelationshipFilters: []*v1.RelationshipFilter{{ResourceType: "document"}}}, codes.InvalidArgument, "optional_relationship_filters"},
		{"filter of an undefined type", &v1.WatchRequest{OptionalRelationshipFilters: []*v1.RelationshipFilter{{ResourceType: "document"}, {ResourceType: "nope"}}},
			codes.FailedPrecondition, "optional_relationship_filters[1].resource_type"},
		{"filter of an undefined relation", &v1.WatchRequest{OptionalRelationshipFilters: []*v1.RelationshipFilter{{ResourceType: "document", OptionalRelation: "nope"}}},
			codes.FailedPrecondition, "optional_relationship_filters[0].optional_relation"},
		{"unknown kind", &v1.WatchRequest{OptionalUpdateKinds: []v1.WatchKind{v1.WatchKind(42)}}, codes.InvalidArgument, "optional_update_kinds[0]"},
	} {
		stream, err := c.Watch(context.Background(), tc.req)
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, tc.name, err, tc.code, tc.msg)
	}
}
