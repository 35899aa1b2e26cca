package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

const auditSchema = `definition user {}
definition doc {
  relation viewer: user
  relation owner: user
  permission view = viewer + owner
}`

// auditFixture is a server whose log holds one schema write, three
// relationship writes and a filtered delete, all made through the API by
// the token "tester".
type auditFixture struct {
	srv    *Server
	cc     *grpc.ClientConn
	audit  pb.AuditServiceClient
	engine storage.Engine
	// zookies of the writes, in order: schema, alice, bob, carol, delete.
	zookies []*pb.Zookie
	// beforeCarol is a time after bob's write and before carol's.
	beforeCarol time.Time
}

func pbLabels(kv ...string) []*pb.Label {
	var out []*pb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &pb.Label{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func newAuditFixture(t *testing.T, edit func(*Config)) *auditFixture {
	t.Helper()
	srv := newHTTPServer(t, nil, edit)
	cc := dialTest(t, srv)
	f := &auditFixture{srv: srv, cc: cc, audit: pb.NewAuditServiceClient(cc), engine: srv.cfg.Engine}
	ctx := context.Background()
	schemaResp, err := pb.NewSchemaServiceClient(cc).WriteSchema(ctx, &pb.WriteSchemaRequest{
		Schema: auditSchema, Reason: "initial schema", Labels: pbLabels("ticket", "SEC-1")})
	if err != nil {
		t.Fatal(err)
	}
	f.zookies = append(f.zookies, schemaResp.GetWrittenAt())
	rels := pb.NewRelationshipServiceClient(cc)
	write := func(op pb.RelationshipUpdate_Operation, rel, reason string, labels ...string) {
		t.Helper()
		resp, err := rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
			Updates: []*pb.RelationshipUpdate{{Operation: op, Relationship: protoRel(t, rel)}},
			Reason:  reason, Labels: pbLabels(labels...),
		})
		if err != nil {
			t.Fatal(err)
		}
		f.zookies = append(f.zookies, resp.GetWrittenAt())
	}
	write(pb.RelationshipUpdate_OPERATION_CREATE, "doc:a#viewer@user:alice", "SEC-42 approved by bob", "ticket", "SEC-42", "approver", "bob")
	write(pb.RelationshipUpdate_OPERATION_TOUCH, "doc:b#viewer@user:bob", "onboarding", "ticket", "SEC-43")
	// Commit times come from the same clock as time.Now here; the pauses
	// only keep the two writes from sharing an instant.
	time.Sleep(5 * time.Millisecond)
	f.beforeCarol = time.Now()
	time.Sleep(5 * time.Millisecond)
	write(pb.RelationshipUpdate_OPERATION_TOUCH, "doc:a#owner@user:carol", "")
	del, err := rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{
		Filter: &pb.RelationshipFilter{ResourceType: "doc", ResourceIds: []string{"a"}, Relation: "viewer"},
		Reason: "offboarding", Labels: pbLabels("ticket", "SEC-44"),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.zookies = append(f.zookies, del.GetWrittenAt())
	return f
}

// read runs a ReadAudit to its end.
func (f *auditFixture) read(t *testing.T, req *pb.ReadAuditRequest) ([]*pb.ReadAuditResponse, error) {
	t.Helper()
	stream, err := f.audit.ReadAudit(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return drainStream(stream.Recv)
}

// formatAuditEvent is an event without its time, revision and hash:
// `created doc:a#viewer@user:alice by tester "reason" approver=bob`.
func formatAuditEvent(ev *pb.AuditEvent) string {
	kind := strings.ToLower(strings.TrimPrefix(ev.GetKind().String(), "AUDIT_EVENT_KIND_"))
	var what string
	if c := ev.GetSchemaChange(); c != nil {
		sign := "-"
		if c.GetAdded() {
			sign = "+"
		}
		what = sign + c.GetKind() + " " + c.GetName()
	} else {
		what = relationshipFromWireForTest(ev.GetRelationship())
	}
	out := fmt.Sprintf("%s %s by %s %q", kind, what, ev.GetActor(), ev.GetReason())
	for _, l := range ev.GetLabels() {
		out += " " + l.GetKey() + "=" + l.GetValue()
	}
	return out
}

func relationshipFromWireForTest(r *pb.Relationship) string {
	rel, err := relationshipFromProto(r, "relationship")
	if err != nil {
		return "invalid: " + err.Error()
	}
	return rel.String()
}

func formatAuditEvents(resps []*pb.ReadAuditResponse) []string {
	out := []string{}
	for _, r := range resps {
		out = append(out, formatAuditEvent(r.GetEvent()))
	}
	return out
}

const (
	aliceCreated = `created doc:a#viewer@user:alice by tester "SEC-42 approved by bob" approver=bob ticket=SEC-42`
	bobTouched   = `touched doc:b#viewer@user:bob by tester "onboarding" ticket=SEC-43`
	carolTouched = `touched doc:a#owner@user:carol by tester ""`
	aliceDeleted = `deleted doc:a#viewer@user:alice by tester "offboarding" ticket=SEC-44`
)

// TestReadAuditFilters: each filter selects the events it names, in
// commit order (or newest first), with their actor, reason and labels.
func TestReadAuditFilters(t *testing.T) {
	f := newAuditFixture(t, nil)
	for _, c := range []struct {
		name string
		req  *pb.ReadAuditRequest
		want []string
	}{
		{"resource", &pb.ReadAuditRequest{ResourceType: "doc", ResourceId: "a"},
			[]string{aliceCreated, carolTouched, aliceDeleted}},
		{"resource type and relation", &pb.ReadAuditRequest{ResourceType: "doc", Relation: "viewer"},
			[]string{aliceCreated, bobTouched, aliceDeleted}},
		{"subject", &pb.ReadAuditRequest{SubjectType: "user", SubjectId: "alice"},
			[]string{aliceCreated, aliceDeleted}},
		{"label", &pb.ReadAuditRequest{Labels: pbLabels("ticket", "SEC-42")}, []string{aliceCreated}},
		{"every label must match", &pb.ReadAuditRequest{Labels: pbLabels("approver", "bob", "ticket", "SEC-43")}, []string{}},
		{"actor and kind", &pb.ReadAuditRequest{Actor: "tester", Kinds: []pb.AuditEventKind{pb.AuditEventKind_AUDIT_EVENT_KIND_DELETED}},
			[]string{aliceDeleted}},
		{"another actor", &pb.ReadAuditRequest{Actor: "someone-else"}, []string{}},
		{"schema", &pb.ReadAuditRequest{Kinds: []pb.AuditEventKind{pb.AuditEventKind_AUDIT_EVENT_KIND_SCHEMA}}, []string{
			`schema +definition doc by tester "initial schema" ticket=SEC-1`,
			`schema +relation doc#viewer by tester "initial schema" ticket=SEC-1`,
			`schema +relation doc#owner by tester "initial schema" ticket=SEC-1`,
			`schema +permission doc#view by tester "initial schema" ticket=SEC-1`,
			`schema +definition user by tester "initial schema" ticket=SEC-1`,
		}},
		{"newest first", &pb.ReadAuditRequest{ResourceType: "doc", ResourceId: "a", NewestFirst: true},
			[]string{aliceDeleted, carolTouched, aliceCreated}},
		{"revision range", &pb.ReadAuditRequest{ResourceType: "doc", FromRevision: f.zookies[2], ToRevision: f.zookies[3]},
			[]string{bobTouched, carolTouched}},
		{"since", &pb.ReadAuditRequest{ResourceType: "doc", Since: timestamppb.New(f.beforeCarol)},
			[]string{carolTouched, aliceDeleted}},
		// A resource type selects the schema changes to the type too.
		{"until", &pb.ReadAuditRequest{ResourceType: "doc", Until: timestamppb.New(f.beforeCarol)}, []string{
			`schema +definition doc by tester "initial schema" ticket=SEC-1`,
			`schema +relation doc#viewer by tester "initial schema" ticket=SEC-1`,
			`schema +relation doc#owner by tester "initial schema" ticket=SEC-1`,
			`schema +permission doc#view by tester "initial schema" ticket=SEC-1`,
			aliceCreated, bobTouched,
		}},
	} {
		resps, err := f.read(t, c.req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := formatAuditEvents(resps); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestReadAuditEventFields: an event carries its revision as a zookie of
// this datastore, its commit time, its entry's kind and hash, and a
// cursor.
func TestReadAuditEventFields(t *testing.T) {
	f := newAuditFixture(t, nil)
	resps, err := f.read(t, &pb.ReadAuditRequest{SubjectType: "user", SubjectId: "alice"})
	if err != nil || len(resps) != 2 {
		t.Fatalf("%d events, %v", len(resps), err)
	}
	created, deleted := resps[0].GetEvent(), resps[1].GetEvent()
	if created.GetRevision().GetToken() != f.zookies[1].GetToken() || deleted.GetRevision().GetToken() != f.zookies[4].GetToken() {
		t.Errorf("revisions %v %v, want the writes' zookies %v %v", created.GetRevision(), deleted.GetRevision(), f.zookies[1], f.zookies[4])
	}
	if created.GetEntryKind() != pb.AuditEntryKind_AUDIT_ENTRY_KIND_WRITE || deleted.GetEntryKind() != pb.AuditEntryKind_AUDIT_ENTRY_KIND_DELETE {
		t.Errorf("entry kinds %v %v", created.GetEntryKind(), deleted.GetEntryKind())
	}
	if len(created.GetEntryHash()) != 64 || created.GetEntryHash() == deleted.GetEntryHash() {
		t.Errorf("entry hashes %q %q", created.GetEntryHash(), deleted.GetEntryHash())
	}
	if ct, dt := created.GetTime().AsTime(), deleted.GetTime().AsTime(); ct.IsZero() || dt.Before(ct) || time.Since(ct) > time.Hour {
		t.Errorf("times %v %v", ct, dt)
	}
	if resps[0].GetCursor() == "" || resps[0].GetCursor() == resps[1].GetCursor() {
		t.Errorf("cursors %q %q", resps[0].GetCursor(), resps[1].GetCursor())
	}
}

// TestReadAuditPaging: pages of limit events, each resumed with the last
// cursor, give the same events as one read, in either order; the server
// caps a page at its AuditPageSize.
func TestReadAuditPaging(t *testing.T) {
	f := newAuditFixture(t, func(c *Config) { c.Limits.AuditPageSize = 3 })
	for _, newest := range []bool{false, true} {
		all, err := f.read(t, &pb.ReadAuditRequest{NewestFirst: newest})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 {
			t.Fatalf("newest first %v: a read without a limit gave %d events, want the page size 3", newest, len(all))
		}
		var want []string
		for cursor := ""; ; {
			page, err := f.read(t, &pb.ReadAuditRequest{NewestFirst: newest, Limit: 100, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Fatalf("a page of %d events, over the page size 3", len(page))
			}
			if len(page) == 0 {
				break
			}
			want = append(want, formatAuditEvents(page)...)
			cursor = page[len(page)-1].GetCursor()
		}
		if len(want) != 9 { // 5 schema changes, 4 relationship changes
			t.Fatalf("newest first %v: %d events in all: %q", newest, len(want), want)
		}
		var got []string
		for cursor := ""; ; {
			page, err := f.read(t, &pb.ReadAuditRequest{NewestFirst: newest, Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 2 {
				t.Fatalf("limit 2 gave %d events", len(page))
			}
			got = append(got, formatAuditEvents(page)...)
			cursor = page[len(page)-1].GetCursor()
		}
		if !slices.Equal(got, want) {
			t.Errorf("newest first %v: pages of 2:\n%q\nwant\n%q", newest, got, want)
		}
		if newest && want[0] != aliceDeleted || !newest && !strings.HasPrefix(want[0], "schema") {
			t.Errorf("newest first %v: first event %q", newest, want[0])
		}
	}
}

// TestReadAuditValidation: a malformed request is refused with
// INVALID_ARGUMENT naming the request field, over gRPC and HTTP.
func TestReadAuditValidation(t *testing.T) {
	f := newAuditFixture(t, nil)
	for _, c := range []struct {
		req  *pb.ReadAuditRequest
		want string
	}{
		{&pb.ReadAuditRequest{ResourceId: "a"}, "resource_id: requires resource_type"},
		{&pb.ReadAuditRequest{SubjectId: "alice"}, "subject_id: requires subject_type"},
		{&pb.ReadAuditRequest{ResourceType: "Doc!"}, "resource_type: "},
		{&pb.ReadAuditRequest{ResourceType: "doc", Relation: "view er"}, "relation: "},
		{&pb.ReadAuditRequest{SubjectType: "user", SubjectRelation: "#x"}, "subject_relation: "},
		{&pb.ReadAuditRequest{Kinds: []pb.AuditEventKind{pb.AuditEventKind_AUDIT_EVENT_KIND_CREATED, 9}},
			"kinds[1]: unknown event kind 9"},
		{&pb.ReadAuditRequest{Since: &timestamppb.Timestamp{Seconds: 1 << 62}}, "since: "},
		{&pb.ReadAuditRequest{Until: &timestamppb.Timestamp{Nanos: -1}}, "until: "},
		{&pb.ReadAuditRequest{Since: timestamppb.New(time.Now()), Until: timestamppb.New(time.Now().Add(-time.Hour))},
			"until: "},
		{&pb.ReadAuditRequest{FromRevision: &pb.Zookie{Token: "not a zookie"}}, "from_revision: malformed zookie"},
		{&pb.ReadAuditRequest{ToRevision: &pb.Zookie{}}, "to_revision: malformed zookie"},
		{&pb.ReadAuditRequest{FromRevision: f.zookies[3], ToRevision: f.zookies[1]}, "to_revision: "},
		{&pb.ReadAuditRequest{Cursor: "garbage"}, "cursor: "},
		{&pb.ReadAuditRequest{Labels: pbLabels("bad key", "x")}, "labels[0].key: "},
	} {
		_, err := f.read(t, c.req)
		wantCode(t, fmt.Sprintf("ReadAudit(%v)", c.req), err, codes.InvalidArgument, c.want)
	}

	code, body := post(t, f.srv, "/v1/audit/read", testSecret, strings.NewReader(`{"resourceId":"a"}`), -1)
	if code != http.StatusBadRequest || !strings.Contains(body, "resource_id: requires resource_type") {
		t.Errorf("HTTP: %d %s", code, body)
	}
	code, body = post(t, f.srv, "/v1/audit/read", testSecret, strings.NewReader(`{"kinds":["AUDIT_EVENT_KIND_NONSENSE"]}`), -1)
	if code != http.StatusBadRequest {
		t.Errorf("HTTP, unknown kind name: %d %s", code, body)
	}
}

// TestAuditOverHTTP: the gateway serves both methods behind the same
// authentication as the rest of the API.
func TestAuditOverHTTP(t *testing.T) {
	f := newAuditFixture(t, nil)
	code, body := post(t, f.srv, "/v1/audit/read", testSecret,
		strings.NewReader(`{"resourceType":"doc","resourceId":"a","kinds":["AUDIT_EVENT_KIND_CREATED","AUDIT_EVENT_KIND_DELETED"]}`), -1)
	if code != http.StatusOK {
		t.Fatalf("read: %d %s", code, body)
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"AUDIT_EVENT_KIND_CREATED"`) || !strings.Contains(lines[0], `"SEC-42 approved by bob"`) ||
		!strings.Contains(lines[0], `"approver"`) || !strings.Contains(lines[1], `"AUDIT_EVENT_KIND_DELETED"`) {
		t.Errorf("read: %s", body)
	}
	code, body = post(t, f.srv, "/v1/audit/verify", testSecret, strings.NewReader(`{}`), -1)
	if code != http.StatusOK || !strings.Contains(body, `"intact":true`) || !strings.Contains(body, `"entries":"5"`) {
		t.Errorf("verify: %d %s", code, body)
	}
	for _, path := range []string{"/v1/audit/read", "/v1/audit/verify"} {
		if code, body := post(t, f.srv, path, "", strings.NewReader(`{}`), -1); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", path, code, body)
		}
	}
}

// TestVerifyAudit: an intact log verifies, with its head as an anchor; an
// anchor the log does not contain breaks it; a malformed anchor is bad
// input.
func TestVerifyAudit(t *testing.T) {
	f := newAuditFixture(t, nil)
	ctx := context.Background()
	head, err := f.engine.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.GetIntact() || res.GetEntries() != 5 || res.GetFirstRevision() != 1 || res.GetLastRevision() != uint64(head) ||
		!strings.HasPrefix(res.GetHead(), fmt.Sprintf("%d:", head)) || len(res.GetHead()) != len(fmt.Sprint(head))+1+64 {
		t.Fatalf("verify: %v", res)
	}
	again, err := f.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{Anchors: []string{res.GetHead()}})
	if err != nil || !again.GetIntact() {
		t.Errorf("verify with the head as anchor: %v %v", again, err)
	}
	forged := res.GetHead()[:len(res.GetHead())-1] + map[bool]string{true: "1", false: "0"}[strings.HasSuffix(res.GetHead(), "0")]
	broken, err := f.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{Anchors: []string{forged}})
	if err != nil || broken.GetIntact() || broken.GetBrokenRevision() != uint64(head) || broken.GetBrokenReason() == "" {
		t.Errorf("verify with a forged anchor: %v %v", broken, err)
	}
	_, err = f.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{Anchors: []string{res.GetHead(), "12:abc"}})
	wantCode(t, "malformed anchor", err, codes.InvalidArgument, "anchors[1]: ")
	_, err = f.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{Anchors: make([]string, 1001)})
	wantCode(t, "too many anchors", err, codes.InvalidArgument, "anchors: 1001 anchors exceed the limit of 1000")
}

// TestAuditDisabled: a server whose audit log is disabled says so instead
// of answering from an empty log.
func TestAuditDisabled(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true, DisableAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	srv := newHTTPServer(t, engine, func(c *Config) { c.DisableAudit = true })
	cc := dialTest(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pb.NewSchemaServiceClient(cc).WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: auditSchema}); err != nil {
		t.Fatal(err)
	}
	audit := pb.NewAuditServiceClient(cc)
	stream, err := audit.ReadAudit(ctx, &pb.ReadAuditRequest{})
	if err == nil {
		_, err = drainStream(stream.Recv)
	}
	wantCode(t, "ReadAudit", err, codes.FailedPrecondition, "audit log is disabled", "--audit=false")
	_, err = audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{})
	wantCode(t, "VerifyAudit", err, codes.FailedPrecondition, "audit log is disabled")
	_, err = pb.NewPermissionServiceClient(cc).CheckPermission(ctx, &pb.CheckPermissionRequest{
		Resource: objRef("doc", "a"), Permission: "view", Subject: subRef("user", "alice"), Explain: true, Provenance: true})
	wantCode(t, "check with provenance", err, codes.FailedPrecondition, "audit log is disabled")
	watch, err := pb.NewWatchServiceClient(cc).Watch(ctx, &pb.WatchRequest{StartTime: timestamppb.Now()})
	if err == nil {
		_, err = watch.Recv()
	}
	wantCode(t, "watch from a time", err, codes.FailedPrecondition, "audit log is disabled")
	if code, body := post(t, srv, "/v1/audit/verify", testSecret, strings.NewReader(`{}`), -1); code != http.StatusBadRequest ||
		!strings.Contains(body, "audit log is disabled") {
		t.Errorf("HTTP verify: %d %s", code, body)
	}
}

// TestWriteLabels: every write refuses a malformed label naming it, and
// Watch reports the labels a write recorded.
func TestWriteLabels(t *testing.T) {
	srv := newHTTPServer(t, nil, nil)
	cc := dialTest(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schemaClient, rels := pb.NewSchemaServiceClient(cc), pb.NewRelationshipServiceClient(cc)
	bad := pbLabels("ticket", "SEC-1", "", "x")
	const want = "labels[1].key: empty"
	_, err := schemaClient.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: auditSchema, Labels: bad})
	wantCode(t, "WriteSchema", err, codes.InvalidArgument, want)
	if _, err := schemaClient.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: auditSchema}); err != nil {
		t.Fatal(err)
	}
	_, err = rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:a#viewer@user:alice"))}, Labels: bad})
	wantCode(t, "WriteRelationships", err, codes.InvalidArgument, want)
	_, err = rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:a#viewer@user:alice"))}, Reason: strings.Repeat("r", 1025)})
	wantCode(t, "WriteRelationships", err, codes.InvalidArgument, "reason: 1025 bytes exceed the limit of 1024")
	_, err = rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{
		Filter: &pb.RelationshipFilter{ResourceType: "doc"}, Labels: bad})
	wantCode(t, "DeleteRelationships", err, codes.InvalidArgument, want)
	imp, err := rels.ImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.Send(&pb.ImportRelationshipsRequest{Relationships: []*pb.Relationship{protoRel(t, "doc:a#viewer@user:alice")}, Labels: bad}); err != nil {
		t.Fatal(err)
	}
	_ = imp.CloseSend()
	_, err = drainStream(imp.Recv)
	wantCode(t, "ImportRelationships", err, codes.InvalidArgument, want)
	head, err := srv.cfg.Engine.HeadRevision(ctx)
	if err != nil || head != 1 {
		t.Fatalf("head %d (%v): a refused write committed", head, err)
	}

	watch, err := pb.NewWatchServiceClient(cc).Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	_, err = rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:a#viewer@user:alice"))},
		Labels:  pbLabels("ticket", "SEC-42", "approver", "bob", "approver", "amy")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range resp.GetLabels() {
		got = append(got, l.GetKey()+"="+l.GetValue())
	}
	if want := []string{"approver=amy", "approver=bob", "ticket=SEC-42"}; !slices.Equal(got, want) {
		t.Errorf("watch labels %q, want %q", got, want)
	}
}

// TestWatchStartTime: a watch from a time starts after the last revision
// committed before it; since and start_time together are refused; a time
// whose revision was garbage-collected is refused like an old zookie.
func TestWatchStartTime(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true, GCWindow: time.Millisecond, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	srv := newHTTPServer(t, engine, nil)
	cc := dialTest(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pb.NewSchemaServiceClient(cc).WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: auditSchema}); err != nil {
		t.Fatal(err)
	}
	rels := pb.NewRelationshipServiceClient(cc)
	write := func(rel string) *pb.Zookie {
		t.Helper()
		resp, err := rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, rel))}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetWrittenAt()
	}
	write("doc:a#viewer@user:alice")
	time.Sleep(5 * time.Millisecond)
	between := time.Now()
	time.Sleep(5 * time.Millisecond)
	second := write("doc:b#viewer@user:bob")

	watch := pb.NewWatchServiceClient(cc)
	firstChange := func(req *pb.WatchRequest) (*pb.WatchResponse, error) {
		stream, err := watch.Watch(ctx, req)
		if err != nil {
			return nil, err
		}
		return stream.Recv()
	}
	resp, err := firstChange(&pb.WatchRequest{StartTime: timestamppb.New(between)})
	if err != nil || resp.GetRevision().GetToken() != second.GetToken() {
		t.Fatalf("watch from between the writes: %v %v, want the second write %v", resp, err, second)
	}
	_, err = firstChange(&pb.WatchRequest{StartTime: timestamppb.New(between), Since: second})
	wantCode(t, "since and start_time", err, codes.InvalidArgument, "start_time: give since or start_time, not both")
	_, err = firstChange(&pb.WatchRequest{StartTime: &timestamppb.Timestamp{Nanos: -1}})
	wantCode(t, "malformed start_time", err, codes.InvalidArgument, "start_time: ")

	write("doc:c#viewer@user:carol")
	time.Sleep(5 * time.Millisecond)
	if err := engine.CollectGarbage(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = firstChange(&pb.WatchRequest{StartTime: timestamppb.New(between)})
	wantCode(t, "watch from a collected time", err, codes.FailedPrecondition, "garbage-collect")
}

// TestCheckProvenance: a check with explain and provenance names, on each
// relationship of its path, the event that wrote it; provenance without
// explain is refused.
func TestCheckProvenance(t *testing.T) {
	f := newAuditFixture(t, nil)
	ctx := context.Background()
	perms := pb.NewPermissionServiceClient(f.cc)
	if _, err := pb.NewRelationshipServiceClient(f.cc).WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:a#owner@user:carol"))}, Reason: "again",
		Labels: pbLabels("ticket", "SEC-50")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		subject, want string
	}{
		{"bob", bobTouched},
		{"carol", `touched doc:a#owner@user:carol by tester "again" ticket=SEC-50`}, // the newest write
	} {
		res := "b"
		if c.subject == "carol" {
			res = "a"
		}
		resp, err := perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
			Resource: objRef("doc", res), Permission: "view", Subject: subRef("user", c.subject), Explain: true, Provenance: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range resp.GetPath().GetSteps() {
			if st.GetRelationship() != nil {
				got = append(got, formatAuditEvent(st.GetProvenance()))
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: provenance %q, want %q", c.subject, got, c.want)
		}
	}
	_, err := perms.CheckPermission(ctx, &pb.CheckPermissionRequest{
		Resource: objRef("doc", "b"), Permission: "view", Subject: subRef("user", "bob"), Provenance: true})
	wantCode(t, "provenance without explain", err, codes.InvalidArgument, "provenance: needs explain")
}
