package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestSearchObjects: the explorer's type-ahead lists distinct stored
// objects by ID prefix, as resources, subjects or either, pages with
// after, leaves out wildcards and expired relationships, and names the
// field of bad input.
func TestSearchObjects(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{})
	c := clientsOf(t, srv)
	explorer := pb.NewExplorerServiceClient(dialTest(t, srv))
	ctx := context.Background()
	schemaText := "use expiration\ndefinition user {}\ndefinition group {\n relation member: user | user with expiration\n}\n" +
		"definition doc {\n relation viewer: user | user:* | group#member\n}"
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: schemaText}); err != nil {
		t.Fatal(err)
	}
	var updates []*pb.RelationshipUpdate
	for _, r := range []string{
		"doc:plan#viewer@user:alice", "doc:plan#viewer@user:bob", "doc:plan-b#viewer@user:*",
		"doc:planet#viewer@group:eng#member", "doc:report#viewer@user:alice",
		"group:eng#member@user:carol", "group:eng#member@user:pat[expiration:2020-01-01T00:00:00Z]",
	} {
		updates = append(updates, touchUpdate(protoRel(t, r)))
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates}); err != nil {
		t.Fatal(err)
	}
	full := &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}
	search := func(req *pb.SearchObjectsRequest) string {
		t.Helper()
		req.Consistency = full
		resp, err := explorer.SearchObjects(ctx, req)
		if err != nil {
			t.Fatalf("search %v: %v", req, err)
		}
		var ids []string
		for _, o := range resp.GetObjects() {
			ids = append(ids, o.GetType()+":"+o.GetId())
		}
		return strings.Join(ids, " ")
	}
	for _, tc := range []struct {
		req  *pb.SearchObjectsRequest
		want string
	}{
		{&pb.SearchObjectsRequest{Type: "doc", Prefix: "plan"}, "doc:plan doc:plan-b doc:planet"},
		{&pb.SearchObjectsRequest{Type: "doc", Prefix: "plan", Limit: 2}, "doc:plan doc:plan-b"},
		{&pb.SearchObjectsRequest{Type: "doc", Prefix: "plan", After: "plan-b"}, "doc:planet"},
		{&pb.SearchObjectsRequest{Type: "doc"}, "doc:plan doc:plan-b doc:planet doc:report"},
		{&pb.SearchObjectsRequest{Type: "doc", Prefix: "x"}, ""},
		// Users appear only as subjects; the wildcard is not an object,
		// and pat's membership has expired.
		{&pb.SearchObjectsRequest{Type: "user"}, "user:alice user:bob user:carol"},
		{&pb.SearchObjectsRequest{Type: "user", Role: pb.ObjectRole_OBJECT_ROLE_RESOURCE}, ""},
		{&pb.SearchObjectsRequest{Type: "user", Prefix: "p"}, ""},
		// A group is a resource (eng#member@...) and a subject (...@group:eng#member): once.
		{&pb.SearchObjectsRequest{Type: "group"}, "group:eng"},
		{&pb.SearchObjectsRequest{Type: "group", Role: pb.ObjectRole_OBJECT_ROLE_SUBJECT}, "group:eng"},
	} {
		if got := search(tc.req); got != tc.want {
			t.Errorf("search %v = %q, want %q", tc.req, got, tc.want)
		}
	}
	who, err := explorer.WhoAmI(ctx, &pb.WhoAmIRequest{})
	if err != nil || who.GetName() != "tester" || !who.GetAudit() {
		t.Fatalf("whoami = %v, %v; want tester with the audit log on", who, err)
	}
	for _, tc := range []struct {
		req   *pb.SearchObjectsRequest
		field string
	}{
		{&pb.SearchObjectsRequest{}, "type"},
		{&pb.SearchObjectsRequest{Type: "nope"}, "type"},
		{&pb.SearchObjectsRequest{Type: "doc", Limit: 101}, "limit"},
		{&pb.SearchObjectsRequest{Type: "doc", Prefix: strings.Repeat("x", 1025)}, "prefix"},
		{&pb.SearchObjectsRequest{Type: "doc", Role: 7}, "role"},
	} {
		_, err := explorer.SearchObjects(ctx, tc.req)
		wantCode(t, "search "+tc.field, err, codes.InvalidArgument, tc.field+":")
	}
}

// TestDescribeSchema: the compiled schema as the explorer draws it.
func TestDescribeSchema(t *testing.T) {
	srv := serveEngine(t, memoryEngine(t), Limits{})
	c := clientsOf(t, srv)
	explorer := pb.NewExplorerServiceClient(dialTest(t, srv))
	ctx := context.Background()
	schemaText := "use expiration\ncaveat on_network(ip ipaddress) { ip.in_cidr('10.0.0.0/8') }\n" +
		"definition user {}\ndefinition group {\n relation member: user | group#member\n}\n" +
		"definition folder {\n relation parent: folder\n relation viewer: user with expiration | group#member\n permission view = viewer + parent->view\n}\n" +
		"/** A document. */\ndefinition doc {\n relation parent: folder\n relation viewer: user:* | user with on_network\n" +
		" permission view = (viewer + parent->view) - parent.all(view)\n}"
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: schemaText}); err != nil {
		t.Fatal(err)
	}
	resp, err := explorer.DescribeSchema(ctx, &pb.DescribeSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, d := range resp.GetDefinitions() {
		b.WriteString("definition " + d.GetName())
		if d.GetDoc() != "" {
			b.WriteString(" (" + d.GetDoc() + ")")
		}
		b.WriteString("\n")
		for _, r := range d.GetRelations() {
			var allowed []string
			for _, a := range r.GetAllowed() {
				allowed = append(allowed, a.GetText())
			}
			b.WriteString("  relation " + r.GetName() + ": " + strings.Join(allowed, " | ") + "\n")
		}
		for _, p := range d.GetPermissions() {
			var arrows []string
			for _, a := range p.GetArrows() {
				arrows = append(arrows, a.GetTupleset()+"."+a.GetFunction()+"("+a.GetTarget()+")")
			}
			b.WriteString("  permission " + p.GetName() + " = " + p.GetExpression() + " uses " + strings.Join(p.GetUses(), ",") +
				" arrows " + strings.Join(arrows, ",") + "\n")
		}
	}
	for _, cv := range resp.GetCaveats() {
		b.WriteString("caveat " + cv.GetName() + "(" + cv.GetParameters()[0].GetName() + " " + cv.GetParameters()[0].GetType() + ") " + cv.GetExpression() + "\n")
	}
	want := `definition user
definition group
  relation member: user | group#member
definition folder
  relation parent: folder
  relation viewer: user with expiration | group#member
  permission view = viewer + parent->view uses viewer arrows parent.any(view)
definition doc (A document.)
  relation parent: folder
  relation viewer: user:* | user with on_network
  permission view = viewer + parent->view - parent.all(view) uses viewer arrows parent.any(view),parent.all(view)
caveat on_network(ip ipaddress) ip.in_cidr('10.0.0.0/8')
`
	if got := b.String(); got != want {
		t.Fatalf("described schema:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(resp.GetText(), "definition doc {") {
		t.Fatalf("text lacks the doc definition:\n%s", resp.GetText())
	}
}
