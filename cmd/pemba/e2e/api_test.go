package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

const testSchema = `definition user {}
definition group {
  relation member: user | group#member
}
definition document {
  relation viewer: user | group#member
  relation banned: user
  permission view = viewer - banned
}`

func obj(typ, id string) *pb.ObjectRef { return &pb.ObjectRef{Type: typ, Id: id} }

func sub(typ, id string) *pb.SubjectRef { return &pb.SubjectRef{Object: obj(typ, id)} }

func rel(resType, resID, relation, subType, subID string) *pb.Relationship {
	return &pb.Relationship{Resource: obj(resType, resID), Relation: relation, Subject: sub(subType, subID)}
}

func touch(r *pb.Relationship) *pb.RelationshipUpdate {
	return &pb.RelationshipUpdate{Operation: pb.RelationshipUpdate_OPERATION_TOUCH, Relationship: r}
}

func del(r *pb.Relationship) *pb.RelationshipUpdate {
	return &pb.RelationshipUpdate{Operation: pb.RelationshipUpdate_OPERATION_DELETE, Relationship: r}
}

func fully() *pb.Consistency {
	return &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}
}

func atLeast(z *pb.Zookie) *pb.Consistency {
	return &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: z}}
}

func exact(z *pb.Zookie) *pb.Consistency {
	return &pb.Consistency{Requirement: &pb.Consistency_AtExactSnapshot{AtExactSnapshot: z}}
}

// setup writes testSchema and returns a client.
func setup(t *testing.T, s *server) *client {
	t.Helper()
	c := s.client(tokenSecret)
	if _, err := c.schema.WriteSchema(context.Background(), &pb.WriteSchemaRequest{Schema: testSchema}); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantStatus fails unless err has code and its message contains every part.
func wantStatus(t *testing.T, what string, err error, code codes.Code, parts ...string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
		return
	}
	for _, p := range parts {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("%s: message %q does not mention %q", what, st.Message(), p)
		}
	}
}

// receiveAll reads a stream to its end, failing t on an error.
func receiveAll[T any](t *testing.T, recv func() (T, error)) []T {
	t.Helper()
	var out []T
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

// drain reads a stream to its end and returns the error that ended it.
func drain[T any](recv func() (T, error)) (int, error) {
	n := 0
	for {
		_, err := recv()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

func TestAPIBadInputs(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--max-write-relationships", "10")
	c := setup(t, s)
	ctx := context.Background()
	good := rel("document", "d", "viewer", "user", "u")
	w, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(good)}})
	if err != nil {
		t.Fatal(err)
	}
	foreign := &pb.Zookie{Token: "AQAAAAAAAAAAAQ"} // version 1, zero instance tag, revision 1
	tooMany := make([]*pb.RelationshipUpdate, 11)
	for i := range tooMany {
		tooMany[i] = touch(rel("document", fmt.Sprintf("d%d", i), "viewer", "user", "u"))
	}

	writes := []struct {
		name  string
		req   *pb.WriteRelationshipsRequest
		parts []string
	}{
		{"empty", &pb.WriteRelationshipsRequest{}, []string{"updates"}},
		{"too many", &pb.WriteRelationshipsRequest{Updates: tooMany}, []string{"updates", "limit of 10"}},
		{"no operation", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{{Relationship: good}}}, []string{"updates[0].operation"}},
		{"no relationship", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{{Operation: pb.RelationshipUpdate_OPERATION_TOUCH}}}, []string{"updates[0].relationship"}},
		{"malformed resource id", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(good), touch(rel("document", "a b", "viewer", "user", "u"))}}, []string{"updates[1].relationship", "resource id"}},
		{"malformed type", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(rel("Doc!", "a", "viewer", "user", "u"))}}, []string{"updates[0].relationship", "resource type"}},
		{"unknown type", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(rel("folder", "a", "viewer", "user", "u"))}}, []string{"updates[0].relationship.resource.type", "folder"}},
		{"unknown relation", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(rel("document", "a", "editor", "user", "u"))}}, []string{"updates[0].relationship.relation", "editor"}},
		{"subject type not allowed", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(rel("document", "a", "viewer", "document", "b"))}}, []string{"updates[0].relationship.subject", "not allowed"}},
		{"duplicate", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(good), del(good)}}, []string{"updates[1].relationship", "updates[0]"}},
		{"bad precondition", &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(good)}, Preconditions: []*pb.Precondition{{Filter: &pb.RelationshipFilter{ResourceType: "document"}}}}, []string{"preconditions[0].operation"}},
	}
	for _, c2 := range writes {
		_, err := c.rels.WriteRelationships(ctx, c2.req)
		wantStatus(t, "write "+c2.name, err, codes.InvalidArgument, c2.parts...)
	}
	// Nothing of the failed writes was written: only the good relationship exists.
	stream, err := c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: fully()})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := drain(stream.Recv); err != nil || n != 1 {
		t.Errorf("after refused writes: %d relationships (err %v), want 1", n, err)
	}

	unknownSubject := &pb.CheckPermissionRequest{Resource: obj("document", "d"), Permission: "view", Subject: sub("robot", "r")}
	checks := []struct {
		name  string
		req   *pb.CheckPermissionRequest
		code  codes.Code
		parts []string
	}{
		{"no resource", &pb.CheckPermissionRequest{Permission: "view", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"resource"}},
		{"malformed resource", &pb.CheckPermissionRequest{Resource: obj("document", ""), Permission: "view", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"resource"}},
		{"no permission", &pb.CheckPermissionRequest{Resource: obj("document", "d"), Subject: sub("user", "u")}, codes.InvalidArgument, []string{"permission"}},
		{"unknown permission", &pb.CheckPermissionRequest{Resource: obj("document", "d"), Permission: "edit", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"permission", "edit"}},
		{"unknown resource type", &pb.CheckPermissionRequest{Resource: obj("folder", "d"), Permission: "view", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"resource.type"}},
		{"unknown subject type", unknownSubject, codes.InvalidArgument, []string{"subject.object.type"}},
		{"malformed zookie", &pb.CheckPermissionRequest{Consistency: atLeast(&pb.Zookie{Token: "!!"}), Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"consistency.at_least_as_fresh"}},
		{"empty zookie", &pb.CheckPermissionRequest{Consistency: exact(&pb.Zookie{}), Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"consistency.at_exact_snapshot"}},
		{"foreign zookie", &pb.CheckPermissionRequest{Consistency: exact(foreign), Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")}, codes.InvalidArgument, []string{"different datastore"}},
	}
	for _, c2 := range checks {
		_, err := c.perms.CheckPermission(ctx, c2.req)
		wantStatus(t, "check "+c2.name, err, c2.code, c2.parts...)
	}

	// A malformed item fails the whole bulk check; one the schema does not
	// know gets its own error and the others are answered.
	_, err = c.perms.BulkCheckPermission(ctx, &pb.BulkCheckPermissionRequest{Items: []*pb.BulkCheckItem{
		{Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")},
		{Resource: obj("document", ""), Permission: "view", Subject: sub("user", "u")},
	}})
	wantStatus(t, "bulk check", err, codes.InvalidArgument, "items[1].resource")
	bulk, err := c.perms.BulkCheckPermission(ctx, &pb.BulkCheckPermissionRequest{Items: []*pb.BulkCheckItem{
		{Resource: obj("document", "d"), Permission: "nope", Subject: sub("user", "u")},
		{Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")},
		{Resource: obj("folder", "d"), Permission: "view", Subject: sub("user", "u")},
		{Resource: obj("document", "d"), Permission: "view", Subject: sub("robot", "r")},
	}})
	if err != nil {
		t.Fatalf("bulk check with unknown names: %v, want per-item errors", err)
	}
	if len(bulk.GetResults()) != 4 {
		t.Fatalf("bulk check of 4 items answered %d", len(bulk.GetResults()))
	}
	for i, want := range []string{"items[0].permission", "", "items[2].resource.type", "items[3].subject.object.type"} {
		r := bulk.GetResults()[i]
		switch {
		case want == "" && (r.GetError() != nil || r.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_UNSPECIFIED):
			t.Errorf("bulk item %d: %v, want an answer", i, r)
		case want != "" && (r.GetError() == nil || codes.Code(r.GetError().GetCode()) != codes.InvalidArgument ||
			!strings.Contains(r.GetError().GetMessage(), want)):
			t.Errorf("bulk item %d: %v, want an INVALID_ARGUMENT error naming %s", i, r, want)
		}
	}
	_, err = c.perms.ExpandPermission(ctx, &pb.ExpandPermissionRequest{Resource: obj("document", "d"), Permission: "nope"})
	wantStatus(t, "expand", err, codes.InvalidArgument, "permission")
	lr, err := c.perms.LookupResources(ctx, &pb.LookupResourcesRequest{ResourceType: "document", Permission: "view", Subject: sub("user", "")})
	if err == nil {
		_, err = drain(lr.Recv)
	}
	wantStatus(t, "lookup resources", err, codes.InvalidArgument, "subject")
	lr, err = c.perms.LookupResources(ctx, &pb.LookupResourcesRequest{ResourceType: "document", Permission: "view", Subject: sub("user", "u"), Cursor: "garbage"})
	if err == nil {
		_, err = drain(lr.Recv)
	}
	wantStatus(t, "lookup resources cursor", err, codes.InvalidArgument, "cursor")
	ls, err := c.perms.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Resource: obj("document", "d"), Permission: "view"})
	if err == nil {
		_, err = drain(ls.Recv)
	}
	wantStatus(t, "lookup subjects", err, codes.InvalidArgument, "subject_type")
	rr, err := c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Filter: &pb.RelationshipFilter{ResourceIds: []string{"x"}}})
	if err == nil {
		_, err = drain(rr.Recv)
	}
	wantStatus(t, "read", err, codes.InvalidArgument, "filter.resource_ids")
	_, err = c.rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{})
	wantStatus(t, "delete everything", err, codes.InvalidArgument, "filter")
	ws, err := c.watch.Watch(ctx, &pb.WatchRequest{Since: &pb.Zookie{Token: "x"}})
	if err == nil {
		_, err = drain(ws.Recv)
	}
	wantStatus(t, "watch", err, codes.InvalidArgument, "since")
	_, err = c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: "definition {"})
	wantStatus(t, "schema", err, codes.InvalidArgument, "schema")
	_, err = c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{Consistency: exact(w.GetWrittenAt())})
	if err != nil {
		t.Errorf("read schema at a write's zookie: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	ctx := context.Background()
	for _, tok := range []string{"", "wrong-secret"} {
		_, err := s.client(tok).schema.ReadSchema(ctx, &pb.ReadSchemaRequest{})
		wantStatus(t, fmt.Sprintf("token %q", tok), err, codes.Unauthenticated)
	}
	r := runCLI(t, []string{"PEMBA_ENDPOINT=" + s.grpcAddr, "PEMBA_TOKEN="}, "", "schema", "read")
	if r.code != 2 || !strings.Contains(r.stderr, "unauthenticated") {
		t.Errorf("CLI without a token: exit %d, stderr %q", r.code, r.stderr)
	}
	if code, body := s.httpDo("POST", "/v1/schema/read", "{}"); code != 200 && code != 404 {
		t.Errorf("HTTP with the token: status %d %s", code, body)
	}

	// Refusals at start: no token, or no auth on a non-loopback address.
	for _, args := range [][]string{
		{"serve", "--datastore", "memory", "--grpc-addr", freeAddr(t), "--http-addr", ""},
		{"serve", "--datastore", "memory", "--insecure-no-auth", "--grpc-addr", "0.0.0.0:0", "--http-addr", ""},
		{"serve", "--datastore", "memory", "--token", "short=abc", "--grpc-addr", freeAddr(t), "--http-addr", ""},
	} {
		r := runCLI(t, nil, "", args...)
		if r.code != 2 {
			t.Errorf("pemba %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	// --insecure-no-auth on loopback serves anyone.
	open := startNoAuthServer(t)
	if _, err := open.client("").schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: testSchema}); err != nil {
		t.Errorf("--insecure-no-auth: %v", err)
	}
}

func TestPreconditionsAndWatch(t *testing.T) {
	s := startServer(t, datastoreArgs(t, "embedded")...)
	c := setup(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	head, err := c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{Consistency: fully()})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := c.watch.Watch(ctx, &pb.WatchRequest{Since: head.GetReadAt()})
	if err != nil {
		t.Fatal(err)
	}

	alice := rel("document", "d", "viewer", "user", "alice")
	mustNotExist := &pb.Precondition{Operation: pb.Precondition_OPERATION_MUST_NOT_MATCH,
		Filter: &pb.RelationshipFilter{ResourceType: "document", ResourceIds: []string{"d"}, Relation: "viewer"}}
	w1, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touch(alice)}, Preconditions: []*pb.Precondition{mustNotExist}, Reason: "grant alice"})
	if err != nil {
		t.Fatalf("write with a holding precondition: %v", err)
	}
	_, err = c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touch(rel("document", "d", "viewer", "user", "bob"))}, Preconditions: []*pb.Precondition{mustNotExist}})
	wantStatus(t, "failed precondition", err, codes.FailedPrecondition)
	_, err = c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{{Operation: pb.RelationshipUpdate_OPERATION_CREATE, Relationship: alice}}})
	wantStatus(t, "create existing", err, codes.AlreadyExists, "document:d")
	mustExist := &pb.Precondition{Operation: pb.Precondition_OPERATION_MUST_MATCH,
		Filter: &pb.RelationshipFilter{ResourceType: "document", Subject: &pb.SubjectFilter{Type: "user", Ids: []string{"alice"}}}}
	w2, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{del(alice)}, Preconditions: []*pb.Precondition{mustExist}, Reason: "revoke alice"})
	if err != nil {
		t.Fatalf("delete with a holding precondition: %v", err)
	}

	// At the first write's exact revision alice can view; at the second's not.
	for _, c2 := range []struct {
		z    *pb.Zookie
		want pb.Permissionship
	}{{w1.GetWrittenAt(), pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION}, {w2.GetWrittenAt(), pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION}} {
		resp, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: exact(c2.z), Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "alice")})
		if err != nil || resp.GetPermissionship() != c2.want {
			t.Errorf("check at %s: %v %v, want %v", c2.z.GetToken(), resp.GetPermissionship(), err, c2.want)
		}
		if resp.GetCheckedAt().GetToken() != c2.z.GetToken() {
			t.Errorf("checked at %s, want %s", resp.GetCheckedAt().GetToken(), c2.z.GetToken())
		}
	}

	// Watch reports both writes in order, with actor and reason.
	want := []struct {
		z      string
		reason string
		op     pb.RelationshipUpdate_Operation
	}{{w1.GetWrittenAt().GetToken(), "grant alice", pb.RelationshipUpdate_OPERATION_TOUCH}, {w2.GetWrittenAt().GetToken(), "revoke alice", pb.RelationshipUpdate_OPERATION_DELETE}}
	for _, w := range want {
		ch, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		if ch.GetRevision().GetToken() != w.z || ch.GetActor() != tokenName || ch.GetReason() != w.reason ||
			len(ch.GetUpdates()) != 1 || ch.GetUpdates()[0].GetOperation() != w.op {
			t.Errorf("watch change %v; want revision %s by %s (%s) %v", ch, w.z, tokenName, w.reason, w.op)
		}
	}
}

func TestMetricsAndHealth(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	c := setup(t, s)
	ctx := context.Background()
	for range 3 {
		if _, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "u")}); err != nil {
			t.Fatal(err)
		}
	}
	code, body := s.httpDo("GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: status %d", code)
	}
	for _, want := range []string{
		`pemba_request_duration_seconds_count{code="OK",method="/pemba.v1.PermissionService/CheckPermission"} 3`,
		"pemba_check_cache_hits_total", "pemba_check_cache_misses_total", "pemba_check_dispatches_total",
		`pemba_datastore_duration_seconds_count{operation="snapshot_reader"}`, "pemba_revision_lag",
		"pemba_read_cache_hits_total", "pemba_read_cache_misses_total",
		"pemba_set_cache_hits_total", "pemba_set_cache_bytes", `pemba_shared_sets_total{outcome="too_large"} 0`,
		"pemba_store_block_cache_hits_total", "pemba_store_block_cache_misses_total", `pemba_store_level_bytes{level="6"}`,
		"pemba_store_read_amplification",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := s.httpDo("GET", path, ""); code != 200 {
			t.Errorf("%s: status %d", path, code)
		}
	}
	if code, _ := s.httpDo("GET", "/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof: status %d, want 404", code)
	}
}

func TestBulkCheckAndMetricsListener(t *testing.T) {
	metricsAddr := freeAddr(t)
	s := startServer(t, "--datastore", "memory", "--metrics-addr", metricsAddr, "--pprof")
	c := setup(t, s)
	ctx := context.Background()
	w, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{
		touch(rel("document", "d", "viewer", "user", "alice")), touch(rel("document", "d", "banned", "user", "bob")),
		touch(rel("document", "d", "viewer", "user", "bob"))}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.perms.BulkCheckPermission(ctx, &pb.BulkCheckPermissionRequest{Consistency: atLeast(w.GetWrittenAt()), Items: []*pb.BulkCheckItem{
		{Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "alice")},
		{Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "bob")},
		{Resource: obj("document", "e"), Permission: "view", Subject: sub("user", "alice")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []pb.Permissionship{pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION, pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION, pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION}
	for i, r := range resp.GetResults() {
		if r.GetPermissionship() != want[i] || r.GetError() != nil {
			t.Errorf("item %d: %v %v, want %v", i, r.GetPermissionship(), r.GetError(), want[i])
		}
	}
	if len(resp.GetResults()) != 3 || resp.GetCheckedAt().GetToken() == "" {
		t.Errorf("bulk check: %d results, zookie %q", len(resp.GetResults()), resp.GetCheckedAt().GetToken())
	}
	// /metrics moved to its own listener.
	r, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(body), "BulkCheckPermission") {
		t.Errorf("metrics listener does not report BulkCheckPermission")
	}
	if code, _ := s.httpDo("GET", "/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the HTTP listener: status %d, want 404 when --metrics-addr is set", code)
	}
	// --pprof serves the profiles beside /metrics only.
	r, err = http.Get("http://" + metricsAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("/debug/pprof/goroutine on the metrics listener: status %d, body %.80q", r.StatusCode, body)
	}
	if code, _ := s.httpDo("GET", "/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the HTTP listener: status %d, want 404 when --metrics-addr is set", code)
	}
}

// TestZookieOlderThanGCWindow: a zookie whose revision was garbage-collected
// is FAILED_PRECONDITION, and the message says so.
func TestZookieOlderThanGCWindow(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--gc-window", "1s", "--gc-interval", "100ms")
	c := setup(t, s)
	ctx := context.Background()
	old, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(rel("document", "d", "viewer", "user", "a"))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(rel("document", "d", "viewer", "user", "b"))}}); err != nil {
		t.Fatal(err)
	}
	req := &pb.CheckPermissionRequest{Consistency: exact(old.GetWrittenAt()), Resource: obj("document", "d"), Permission: "view", Subject: sub("user", "a")}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := c.perms.CheckPermission(ctx, req)
		if err != nil {
			wantStatus(t, "check at a collected revision", err, codes.FailedPrecondition, "garbage-collected")
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the old revision was still readable 20s after a 1s GC window")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMaxDepth: a check that needs more nesting than --max-depth is
// RESOURCE_EXHAUSTED with a message, never a guessed answer.
func TestMaxDepth(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--max-depth", "3")
	c := setup(t, s)
	ctx := context.Background()
	updates := []*pb.RelationshipUpdate{touch(&pb.Relationship{Resource: obj("document", "d"), Relation: "viewer",
		Subject: &pb.SubjectRef{Object: obj("group", "g0"), Relation: "member"}})}
	for i := range 6 {
		updates = append(updates, touch(&pb.Relationship{Resource: obj("group", fmt.Sprint("g", i)), Relation: "member",
			Subject: &pb.SubjectRef{Object: obj("group", fmt.Sprint("g", i+1)), Relation: "member"}}))
	}
	updates = append(updates, touch(rel("group", "g6", "member", "user", "deep")))
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates}); err != nil {
		t.Fatal(err)
	}
	_, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fully(), Resource: obj("document", "d"),
		Permission: "view", Subject: sub("user", "deep")})
	wantStatus(t, "deep check", err, codes.ResourceExhausted, "max depth")
}
