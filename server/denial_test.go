package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

const denialSchema = `use expiration
caveat on_network(ip string, allowed string) {
	ip == allowed
}
definition user {}
definition document {
	relation viewer: user | user with on_network
	relation editor: user with expiration
	relation banned: user
	permission view = viewer + editor - banned
}`

// TestCheckDenial: a denied check with explain carries the denial
// explanation over gRPC: each branch, why it failed, and its text.
func TestCheckDenial(t *testing.T) {
	_, _, cc := newSchemaServer(t, denialSchema,
		`document:plan#viewer@user:bob[on_network:{"allowed":"10.0.0.1"}]`,
		`document:plan#editor@user:bob[expiration:2020-11-30T10:00:00Z]`,
		`document:plan#viewer@user:erin`,
		`document:plan#banned@user:erin`)
	perms := pb.NewPermissionServiceClient(cc)
	ctx := context.Background()
	reqCtx, err := structpb.NewStruct(map[string]any{"ip": "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
		Resource: objRef("document", "plan"), Permission: "view", Subject: subRef("user", "bob"), Context: reqCtx, Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION || resp.GetPath() != nil {
		t.Fatalf("got %v with path %v, want NO_PERMISSION without a path", resp.GetPermissionship(), resp.GetPath())
	}
	d := resp.GetDenial()
	want := `document:plan#view = viewer + editor - banned
  ✗ viewer: caveat on_network is false on document:plan#viewer@user:bob with {"allowed":"10.0.0.1","ip":"10.0.0.9"}
  ✗ editor: document:plan#editor@user:bob expired at 2020-11-30T10:00:00Z`
	if d.GetText() != want {
		t.Errorf("text:\n%s\nwant:\n%s", d.GetText(), want)
	}
	root := d.GetRoot()
	if root.GetKind() != pb.ExplanationNode_KIND_PERMISSION || root.GetObject().GetId() != "plan" || root.GetRelation() != "view" || len(root.GetChildren()) != 2 {
		t.Fatalf("root: %v", root)
	}
	cav, exp := root.GetChildren()[0], root.GetChildren()[1]
	if cav.GetKind() != pb.ExplanationNode_KIND_CAVEAT_FALSE || cav.GetCaveat() != "on_network" ||
		cav.GetContext().GetFields()["ip"].GetStringValue() != "10.0.0.9" || cav.GetRelationship().GetRelation() != "viewer" {
		t.Errorf("caveat branch: %v", cav)
	}
	if exp.GetKind() != pb.ExplanationNode_KIND_EXPIRED || exp.GetRelationship().GetExpiration().AsTime().Year() != 2020 ||
		exp.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION {
		t.Errorf("expired branch: %v", exp)
	}

	// An exclusion: both sides granted, each with its path.
	resp, err = perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
		Resource: objRef("document", "plan"), Permission: "view", Subject: subRef("user", "erin"), Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	ex := resp.GetDenial().GetRoot().GetChildren()
	if len(ex) != 1 || ex[0].GetKind() != pb.ExplanationNode_KIND_EXCLUDED || ex[0].GetExpression() != "banned" || len(ex[0].GetChildren()) != 2 {
		t.Fatalf("exclusion: %v", resp.GetDenial())
	}
	for _, side := range ex[0].GetChildren() {
		if side.GetKind() != pb.ExplanationNode_KIND_GRANTED || !strings.HasPrefix(side.GetPath().GetText(), "user:erin → document:plan#") {
			t.Errorf("granted side: %v", side)
		}
	}

	// Without explain, or when granted, there is no denial.
	resp, err = perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
		Resource: objRef("document", "plan"), Permission: "view", Subject: subRef("user", "bob"), Context: reqCtx})
	if err != nil || resp.GetDenial() != nil {
		t.Errorf("without explain: %v %v", resp, err)
	}
	resp, err = perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
		Resource: objRef("document", "plan"), Permission: "viewer", Subject: subRef("user", "erin"), Explain: true})
	if err != nil || resp.GetDenial() != nil || resp.GetPath() == nil {
		t.Errorf("granted: %v %v", resp, err)
	}
}
