package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// treeSchema is the schema of the tests of expand and traces: subject
// sets, a wildcard, an arrow and an exclusion.
const treeSchema = `definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation viewer: user
    permission view = viewer
}

definition document {
    relation parent: folder
    relation viewer: user | user:* | group#member
    relation editor: user
    relation banned: user
    permission edit = editor
    permission view = (viewer + parent->view) - banned
    permission inherited = parent->view
}
`

// setupTree writes treeSchema and its relationships; it returns the
// write's token.
func setupTree(t *testing.T, c *authzed.Client) *v1.ZedToken {
	t.Helper()
	ctx := context.Background()
	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: treeSchema}); err != nil {
		t.Fatal(err)
	}
	var updates []*v1.RelationshipUpdate
	for _, r := range []string{
		"document:d#viewer@user:ann", "document:d#viewer@user:*", "document:d#viewer@group:eng#member",
		"document:d#parent@folder:f", "document:d#banned@user:eve", "document:d#editor@user:ed",
		"group:eng#member@user:bob", "folder:f#viewer@user:dan",
	} {
		updates = append(updates, azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azRel(t, r)))
	}
	resp, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetWrittenAt()
}

// azRel parses "type:id#relation@type:id[#relation]".
func azRel(t *testing.T, s string) *v1.Relationship {
	t.Helper()
	res, sub, ok := strings.Cut(s, "@")
	obj, rel, ok2 := strings.Cut(res, "#")
	if !ok || !ok2 {
		t.Fatalf("bad relationship %q", s)
	}
	return &v1.Relationship{Resource: azRef(t, obj), Relation: rel, Subject: azSubject(t, sub)}
}

// azRef parses "type:id".
func azRef(t *testing.T, s string) *v1.ObjectReference {
	t.Helper()
	typ, id, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("bad object %q", s)
	}
	return azObject(typ, id)
}

// azSubject parses "type:id[#relation]".
func azSubject(t *testing.T, s string) *v1.SubjectReference {
	t.Helper()
	obj, rel, _ := strings.Cut(s, "#")
	return &v1.SubjectReference{Object: azRef(t, obj), OptionalRelation: rel}
}

// treeText renders a SpiceDB expand tree one node per line, children
// indented: "union document:d#view", "leaf document:d#viewer: user:ann".
func treeText(n *v1.PermissionRelationshipTree) string {
	var b strings.Builder
	var walk func(n *v1.PermissionRelationshipTree, indent string)
	walk = func(n *v1.PermissionRelationshipTree, indent string) {
		at := n.GetExpandedObject().GetObjectType() + ":" + n.GetExpandedObject().GetObjectId() + "#" + n.GetExpandedRelation()
		if in := n.GetIntermediate(); in != nil {
			op := strings.ToLower(strings.TrimPrefix(in.GetOperation().String(), "OPERATION_"))
			b.WriteString(indent + op + " " + at + "\n")
			for _, c := range in.GetChildren() {
				walk(c, indent+"  ")
			}
			return
		}
		var subs []string
		for _, s := range n.GetLeaf().GetSubjects() {
			sub := s.GetObject().GetObjectType() + ":" + s.GetObject().GetObjectId()
			if s.GetOptionalRelation() != "" {
				sub += "#" + s.GetOptionalRelation()
			}
			subs = append(subs, sub)
		}
		b.WriteString(indent + "leaf " + at + ": " + strings.Join(subs, " ") + "\n")
	}
	walk(n, "")
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAuthzedExpandPermissionTree(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupTree(t, c)
	ctx := context.Background()

	for _, tc := range []struct {
		resource, permission string
		want                 string
	}{
		{"document:d", "view", `exclusion document:d#view
  union document:d#view
    leaf document:d#viewer: group:eng#member user:* user:ann
    union document:d#view
      union folder:f#view
        leaf folder:f#viewer: user:dan
  leaf document:d#banned: user:eve`},
		{"document:d", "edit", `union document:d#edit
  leaf document:d#editor: user:ed`},
		{"group:eng", "member", `leaf group:eng#member: user:bob`},
		{"folder:f", "view", `union folder:f#view
  leaf folder:f#viewer: user:dan`},
		{"document:d", "inherited", `union document:d#inherited
  union document:d#inherited
    union folder:f#view
      leaf folder:f#viewer: user:dan`},
		{"document:none", "viewer", `leaf document:none#viewer: `},
	} {
		resp, err := c.ExpandPermissionTree(ctx, &v1.ExpandPermissionTreeRequest{
			Consistency: azFresh(tok), Resource: azRef(t, tc.resource), Permission: tc.permission,
		})
		if err != nil {
			t.Fatalf("expand %s#%s: %v", tc.resource, tc.permission, err)
		}
		if got := treeText(resp.GetTreeRoot()); got != tc.want {
			t.Errorf("expand %s#%s:\n%s\nwant:\n%s", tc.resource, tc.permission, got, tc.want)
		}
		if resp.GetExpandedAt().GetToken() == "" {
			t.Errorf("expand %s#%s: no expanded_at token", tc.resource, tc.permission)
		}
	}

	// At the snapshot before the relationships were written, the tree has
	// no subjects.
	before, err := c.ExpandPermissionTree(ctx, &v1.ExpandPermissionTreeRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}},
		Resource:    azRef(t, "group:eng"), Permission: "member",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(before.GetTreeRoot().GetLeaf().GetSubjects()); got != 0 {
		t.Errorf("minimize_latency expand saw %d subjects written after its snapshot", got)
	}

	_, err = c.ExpandPermissionTree(ctx, &v1.ExpandPermissionTreeRequest{Resource: azRef(t, "document:d"), Permission: "share"})
	wantCode(t, "expand of an undefined permission", err, codes.FailedPrecondition, "share")
	_, err = c.ExpandPermissionTree(ctx, &v1.ExpandPermissionTreeRequest{Resource: azRef(t, "document:d")})
	wantCode(t, "expand without a permission", err, codes.InvalidArgument, "permission")
}

// traceText renders a debug trace one check a line: the result, the
// checked object#permission and, for a granted leaf, the subject reached.
func traceText(t *v1.CheckDebugTrace) string {
	var b strings.Builder
	var walk func(t *v1.CheckDebugTrace, indent string)
	walk = func(t *v1.CheckDebugTrace, indent string) {
		res := strings.TrimPrefix(t.GetResult().String(), "PERMISSIONSHIP_")
		kind := strings.ToLower(strings.TrimPrefix(t.GetPermissionType().String(), "PERMISSION_TYPE_"))
		b.WriteString(indent + res + " " + t.GetResource().GetObjectType() + ":" + t.GetResource().GetObjectId() +
			"#" + t.GetPermission() + " (" + kind + ")")
		if c := t.GetCaveatEvaluationInfo(); c != nil {
			b.WriteString(" caveat " + c.GetCaveatName() + " " + c.GetResult().String())
		}
		b.WriteString("\n")
		if sub := t.GetSubProblems(); sub != nil {
			for _, c := range sub.GetTraces() {
				walk(c, indent+"  ")
			}
		} else {
			b.WriteString(indent + "  subject " + t.GetSubject().GetObject().GetObjectId() + "\n")
		}
	}
	walk(t, "")
	return strings.TrimSuffix(b.String(), "\n")
}

func TestAuthzedCheckWithTracing(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupTree(t, c)
	ctx := context.Background()

	for _, tc := range []struct {
		subject string
		want    string
	}{
		// Through the wildcard, the shortest path.
		{"user:bob", `HAS_PERMISSION document:d#view (permission)
  HAS_PERMISSION document:d#viewer (relation)
    subject bob`},
		{"group:eng#member", `HAS_PERMISSION document:d#view (permission)
  HAS_PERMISSION document:d#viewer (relation)
    subject eng`},
		{"user:eve", `NO_PERMISSION document:d#view (permission)
  HAS_PERMISSION document:d#viewer (relation)
    subject eve
  HAS_PERMISSION document:d#banned (relation)
    subject eve`},
	} {
		resp, err := c.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: azFresh(tok), Resource: azRef(t, "document:d"), Permission: "view",
			Subject: azSubject(t, tc.subject), WithTracing: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := traceText(resp.GetDebugTrace().GetCheck()); got != tc.want {
			t.Errorf("trace of %s:\n%s\nwant:\n%s", tc.subject, got, tc.want)
		}
		if resp.GetDebugTrace().GetSchemaUsed() != treeSchema {
			t.Errorf("trace of %s: schema_used %q", tc.subject, resp.GetDebugTrace().GetSchemaUsed())
		}
	}

	// Without with_tracing there is no trace; a bulk check traces each item.
	plain := azCheck(t, c, &v1.CheckPermissionRequest{Consistency: azFresh(tok), Resource: azRef(t, "document:d"),
		Permission: "view", Subject: azSubject(t, "user:bob")})
	if plain.GetDebugTrace() != nil {
		t.Errorf("trace sent unasked: %v", plain.GetDebugTrace())
	}
	bulk, err := c.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Consistency: azFresh(tok), WithTracing: true,
		Items: []*v1.CheckBulkPermissionsRequestItem{
			{Resource: azRef(t, "document:d"), Permission: "edit", Subject: azSubject(t, "user:ed")},
			{Resource: azRef(t, "document:d"), Permission: "edit", Subject: azSubject(t, "user:bob")},
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"HAS_PERMISSION document:d#edit (permission)\n  HAS_PERMISSION document:d#editor (relation)\n    subject ed",
		"NO_PERMISSION document:d#edit (permission)\n  NO_PERMISSION document:d#editor (relation)",
	} {
		if got := traceText(bulk.GetPairs()[i].GetItem().GetDebugTrace().GetCheck()); got != want {
			t.Errorf("bulk item %d trace:\n%s\nwant:\n%s", i, got, want)
		}
	}
}

func TestAuthzedLookupSubjectsWildcards(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupTree(t, c)
	ctx := context.Background()

	lookup := func(req *v1.LookupSubjectsRequest) ([]string, error) {
		stream, err := c.LookupSubjects(ctx, req)
		if err != nil {
			return nil, err
		}
		var out []string
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				slices.Sort(out)
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			s := r.GetSubject().GetSubjectObjectId()
			var excluded []string
			for _, e := range r.GetExcludedSubjects() {
				excluded = append(excluded, e.GetSubjectObjectId())
			}
			if len(excluded) > 0 {
				s += " -" + strings.Join(excluded, ",")
			}
			out = append(out, s)
		}
	}
	req := &v1.LookupSubjectsRequest{Consistency: azFresh(tok), Resource: azRef(t, "document:d"),
		Permission: "view", SubjectObjectType: "user"}
	got, err := lookup(req)
	if err != nil {
		t.Fatal(err)
	}
	// eve is banned: the wildcard reports her excluded. The subjects the
	// relationships name are listed beside it, as SpiceDB lists them.
	if want := []string{"* -eve", "ann", "bob", "dan"}; !slices.Equal(got, want) {
		t.Errorf("subjects %v, want %v", got, want)
	}
	req.WildcardOption = v1.LookupSubjectsRequest_WILDCARD_OPTION_EXCLUDE_WILDCARDS
	if got, err = lookup(req); err != nil || !slices.Equal(got, []string{"ann", "bob", "dan"}) {
		t.Errorf("subjects without wildcards: %v, %v", got, err)
	}
	// Without the wildcard relationship, the concrete subjects.
	if _, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: &v1.RelationshipFilter{
		ResourceType: "document", OptionalRelation: "viewer",
		OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: "*"}}}); err != nil {
		t.Fatal(err)
	}
	req.Consistency = &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	req.WildcardOption = v1.LookupSubjectsRequest_WILDCARD_OPTION_INCLUDE_WILDCARDS
	if got, err = lookup(req); err != nil || !slices.Equal(got, []string{"ann", "bob", "dan"}) {
		t.Errorf("subjects after the wildcard's delete: %v, %v", got, err)
	}

	// A cursor alone is ignored; a concrete limit is refused, as SpiceDB does.
	req.OptionalCursor = &v1.Cursor{Token: "anything"}
	if got, err = lookup(req); err != nil || len(got) != 3 {
		t.Errorf("subjects with a cursor: %v, %v", got, err)
	}
	req.OptionalConcreteLimit = 2
	_, err = lookup(req)
	wantCode(t, "concrete limit", err, codes.Unimplemented, "concrete limit is not yet supported")
}

func TestAuthzedDeletePreconditionsAndMetadata(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	setupTree(t, c)
	ctx := context.Background()
	meta, err := structpb.NewStruct(map[string]any{"ticket": "SEC-7", "approved": true})
	if err != nil {
		t.Fatal(err)
	}
	viewers := &v1.RelationshipFilter{ResourceType: "document", OptionalResourceId: "d", OptionalRelation: "viewer"}
	mustBan := func(user string) []*v1.Precondition {
		return []*v1.Precondition{{Operation: v1.Precondition_OPERATION_MUST_MATCH, Filter: &v1.RelationshipFilter{
			ResourceType: "document", OptionalRelation: "banned",
			OptionalSubjectFilter: &v1.SubjectFilter{SubjectType: "user", OptionalSubjectId: user}}}}
	}

	_, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalPreconditions: mustBan("ann")})
	wantCode(t, "delete whose precondition fails", err, codes.FailedPrecondition, "precondition")
	wantReason(t, err, v1.ErrorReason_ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE)

	_, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalLimit: 2})
	wantCode(t, "delete above the limit", err, codes.InvalidArgument, "partial deletion was not requested")
	wantReason(t, err, v1.ErrorReason_ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE)

	part, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalLimit: 2,
		OptionalAllowPartialDeletions: true, OptionalPreconditions: mustBan("eve"), OptionalTransactionMetadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	if part.GetDeletionProgress() != v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL || part.GetRelationshipsDeletedCount() != 2 {
		t.Fatalf("partial guarded delete: %v", part)
	}
	if part.GetAfterResultCursor().GetToken() == "" {
		t.Fatalf("a partial delete hands out no cursor: %v", part)
	}
	_, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalCursor: part.GetAfterResultCursor()})
	wantCode(t, "cursor without a limit", err, codes.InvalidArgument, "optional_cursor: requires optional_limit and optional_allow_partial_deletions")
	_, err = c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalLimit: 2,
		OptionalAllowPartialDeletions: true, OptionalCursor: &v1.Cursor{Token: "nonsense"}})
	wantCode(t, "malformed cursor", err, codes.InvalidArgument, "optional_cursor")
	rest, err := c.DeleteRelationships(ctx, &v1.DeleteRelationshipsRequest{RelationshipFilter: viewers, OptionalLimit: 2,
		OptionalAllowPartialDeletions: true, OptionalCursor: part.GetAfterResultCursor(), OptionalPreconditions: mustBan("eve")})
	if err != nil {
		t.Fatal(err)
	}
	if rest.GetDeletionProgress() != v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE || rest.GetRelationshipsDeletedCount() != 1 ||
		rest.GetDeletedAt().GetToken() == "" || rest.GetAfterResultCursor() != nil {
		t.Fatalf("guarded delete of the rest, from the cursor: %v", rest)
	}

	// The write's transaction metadata is recorded as audit labels.
	if _, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{OptionalTransactionMetadata: meta,
		Updates: []*v1.RelationshipUpdate{azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azRel(t, "document:m#viewer@user:meg"))}}); err != nil {
		t.Fatal(err)
	}
	stream, err := pb.NewAuditServiceClient(dialTest(t, srv)).ReadAudit(ctx, &pb.ReadAuditRequest{
		Labels: []*pb.Label{{Key: "ticket", Value: "SEC-7"}}})
	if err != nil {
		t.Fatal(err)
	}
	events, err := drainStream(stream.Recv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`deleted document:d#viewer@group:eng#member by tester "" approved=true ticket=SEC-7`,
		`deleted document:d#viewer@user:* by tester "" approved=true ticket=SEC-7`,
		`touched document:m#viewer@user:meg by tester "" approved=true ticket=SEC-7`,
	}
	if got := formatAuditEvents(events); !slices.Equal(got, want) {
		t.Errorf("audit events with the metadata:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	bad, _ := structpb.NewStruct(map[string]any{"not a key": "x"})
	_, err = c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{OptionalTransactionMetadata: bad,
		Updates: []*v1.RelationshipUpdate{azUpdate(v1.RelationshipUpdate_OPERATION_TOUCH, azRel(t, "document:m#viewer@user:meg"))}})
	wantCode(t, "bad transaction metadata", err, codes.InvalidArgument, "optional_transaction_metadata.not a key")
}

// wantReason checks that err carries SpiceDB's ErrorInfo with reason.
func wantReason(t *testing.T, err error, reason v1.ErrorReason) {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if info.GetReason() != reason.String() || info.GetDomain() != "authzed.com" {
				t.Fatalf("%v: ErrorInfo %v, want reason %v", err, info, reason)
			}
			return
		}
	}
	t.Fatalf("%v: no ErrorInfo, want reason %v", err, reason)
}

func TestAuthzedErrorReasons(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	tok := setupTree(t, c)
	ctx := context.Background()
	write := func(rels ...string) error {
		var updates []*v1.RelationshipUpdate
		for _, r := range rels {
			updates = append(updates, azUpdate(v1.RelationshipUpdate_OPERATION_CREATE, azRel(t, r)))
		}
		_, err := c.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates})
		return err
	}
	check := func(resource, perm, subject string) error {
		_, err := c.CheckPermission(ctx, &v1.CheckPermissionRequest{Consistency: azFresh(tok),
			Resource: azRef(t, resource), Permission: perm, Subject: azSubject(t, subject)})
		return err
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("document:n%d#viewer@user:u", i)
	}
	for _, tc := range []struct {
		name   string
		err    error
		code   codes.Code
		msg    string
		reason v1.ErrorReason
	}{
		{"unknown definition", check("folio:1", "view", "user:a"), codes.FailedPrecondition, `type "folio" is not defined`,
			v1.ErrorReason_ERROR_REASON_UNKNOWN_DEFINITION},
		{"unknown permission", check("document:d", "share", "user:a"), codes.FailedPrecondition, `no permission or relation "share"`,
			v1.ErrorReason_ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION},
		{"unknown relation written", write("document:d#owner@user:a"), codes.FailedPrecondition, `has no relation "owner"`,
			v1.ErrorReason_ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION},
		{"unknown subject type written", write("document:d#viewer@robot:r"), codes.FailedPrecondition, `type "robot" is not defined`,
			v1.ErrorReason_ERROR_REASON_UNKNOWN_DEFINITION},
		{"permission written", write("document:d#view@user:a"), codes.FailedPrecondition, "only relations can be written",
			v1.ErrorReason_ERROR_REASON_CANNOT_UPDATE_PERMISSION},
		{"subject not allowed", write("document:d#banned@group:eng#member"), codes.FailedPrecondition, "is not allowed on",
			v1.ErrorReason_ERROR_REASON_INVALID_SUBJECT_TYPE},
		{"duplicate create", write("document:d#editor@user:ed"), codes.AlreadyExists, "",
			v1.ErrorReason_ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP},
		{"too many updates", write(many...), codes.InvalidArgument, "exceed the limit of",
			v1.ErrorReason_ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, tc.err, tc.code, tc.msg)
			wantReason(t, tc.err, tc.reason)
		})
	}
}

func TestAuthzedImportBulkRelationships(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{ImportBatchSize: 2, MaxImportTransaction: 6})
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()
	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: treeSchema}); err != nil {
		t.Fatal(err)
	}
	importRels := func(batches ...[]string) (*v1.ImportBulkRelationshipsResponse, error) {
		stream, err := c.ImportBulkRelationships(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range batches {
			var rels []*v1.Relationship
			for _, r := range b {
				rels = append(rels, azRel(t, r))
			}
			if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: rels}); err != nil {
				break // the server ended the stream: CloseAndRecv reports why
			}
		}
		return stream.CloseAndRecv()
	}
	resp, err := importRels(
		[]string{"document:a#viewer@user:ann", "document:a#viewer@user:*", "document:a#viewer@group:eng#member"},
		[]string{"group:eng#member@user:bob", "document:b#viewer@user:bob"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetNumLoaded() != 5 {
		t.Fatalf("num_loaded %d, want 5", resp.GetNumLoaded())
	}
	got := azCheck(t, c, &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		Resource:    azRef(t, "document:b"), Permission: "view", Subject: azSubject(t, "user:bob")})
	if got.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("check after the import: %v", got.GetPermissionship())
	}

	// Each import is one transaction: whatever fails it, nothing of it
	// is committed, though it spans several of the server's import
	// batches (2 here).
	relationshipsNow := func() []string {
		t.Helper()
		stream, err := c.ReadRelationships(ctx, &v1.ReadRelationshipsRequest{
			Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
			RelationshipFilter: &v1.RelationshipFilter{ResourceType: "document"}})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := drainStream(stream.Recv)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.GetRelationship().GetResource().GetObjectId()+"#"+r.GetRelationship().GetRelation()+"@"+
				r.GetRelationship().GetSubject().GetObject().GetObjectId())
		}
		return out
	}
	before := relationshipsNow()
	unchanged := func(what string) {
		t.Helper()
		if after := relationshipsNow(); !slices.Equal(after, before) {
			t.Fatalf("%s committed part of the import: %v, before %v", what, after, before)
		}
	}
	_, err = importRels([]string{"document:c#viewer@user:cy", "document:c#viewer@user:cal", "document:c#viewer@user:cat"},
		[]string{"document:a#viewer@user:ann"})
	wantCode(t, "import of a stored relationship", err, codes.AlreadyExists, "document:a#viewer@user:ann")
	wantReason(t, err, v1.ErrorReason_ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP)
	unchanged("a stored relationship")
	_, err = importRels([]string{"document:d#viewer@user:x", "document:d#viewer@user:y", "document:d#viewer@user:x"})
	wantCode(t, "import of a relationship twice", err, codes.AlreadyExists, "document:d#viewer@user:x")
	unchanged("a relationship sent twice")

	// The schema guards it as it guards writes.
	_, err = importRels([]string{"document:e#viewer@user:x", "document:e#viewer@user:y", "document:e#viewer@user:z", "document:e#owner@user:x"})
	wantCode(t, "import of an undefined relation", err, codes.FailedPrecondition, `relationships[3].relation: definition "document" has no relation "owner"`)
	wantReason(t, err, v1.ErrorReason_ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION)
	unchanged("an undefined relation")

	// More than the transaction bound (6 here): refused, naming the limit.
	var seven []string
	for i := range 7 {
		seven = append(seven, fmt.Sprintf("document:g#viewer@user:u%d", i))
	}
	_, err = importRels(seven[:3], seven[3:])
	wantCode(t, "import above the transaction bound", err, codes.InvalidArgument,
		"relationships[6]: an import is one transaction of at most 6 relationships (--max-import-transaction)")
	unchanged("an import above the bound")
	if resp, err := importRels(seven[:3], seven[3:6]); err != nil || resp.GetNumLoaded() != 6 {
		t.Fatalf("import of exactly the bound: %v, %v", resp, err)
	}

	// The experimental service's alias.
	exp := authzedExperimentalClient(t, srv)
	bulk, err := exp.BulkImportRelationships(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bulk.Send(&v1.BulkImportRelationshipsRequest{Relationships: []*v1.Relationship{azRel(t, "document:f#viewer@user:fay")}}); err != nil {
		t.Fatal(err)
	}
	if r, err := bulk.CloseAndRecv(); err != nil || r.GetNumLoaded() != 1 {
		t.Fatalf("BulkImportRelationships: %v, %v", r, err)
	}
}

// TestImportBufferBound: every import stream together buffers at most
// MaxImportBuffer bytes (--max-import-buffer). An import past it fails
// with RESOURCE_EXHAUSTED naming the flag, commits nothing, and gives its
// buffer back, so a smaller import succeeds right after.
func TestImportBufferBound(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{MaxImportBuffer: 4 << 10})
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()
	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: treeSchema}); err != nil {
		t.Fatal(err)
	}
	importN := func(n int) (*v1.ImportBulkRelationshipsResponse, error) {
		stream, err := c.ImportBulkRelationships(ctx)
		if err != nil {
			return nil, err
		}
		for i := range n {
			rel := azRel(t, fmt.Sprintf("document:doc-%d#viewer@user:someone-%d", i, i))
			if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: []*v1.Relationship{rel}}); err != nil {
				break // the server ended the stream: CloseAndRecv reports why
			}
		}
		return stream.CloseAndRecv()
	}
	_, err := importN(1000)
	wantCode(t, "an import past the buffer bound", err, codes.ResourceExhausted, "--max-import-buffer")
	if resp, err := importN(5); err != nil || resp.GetNumLoaded() != 5 {
		t.Fatalf("a small import after it: %v, %v", resp, err)
	}
}
