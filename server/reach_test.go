package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	pb "github.com/pembadb/pemba/proto/pemba/v1"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

const reachSchema = "definition user {}\ndefinition group {\n relation member: user | group#member\n}"

// TestReachIndexServesNestedGroups checks nested-group memberships over
// gRPC with the reachability index on (the default) and off: the answers
// agree, follow writes and schema writes, and only the server with the
// index answers from it.
func TestReachIndexServesNestedGroups(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		engine, err := pebble.Open(pebble.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { engine.Close() })
		srv := serveTest(t, Config{
			Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
			GRPCAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DisableReachIndex: disabled,
		})
		ctx := context.Background()
		if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: reachSchema}}); err != nil {
			t.Fatal(err)
		}
		nest := func(parent, child string) graph.Relationship {
			return graph.Relationship{Resource: graph.ObjectRef{Type: "group", ID: parent}, Relation: "member",
				Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: child}, Relation: "member"}}
		}
		alice := graph.Relationship{Resource: graph.ObjectRef{Type: "group", ID: "g3"}, Relation: "member",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "alice"}}}
		write := func(op storage.Op, rels ...graph.Relationship) { writeIndexed(t, srv, engine, op, rels...) }
		perms := pb.NewPermissionServiceClient(dialTest(t, srv))
		member := func(group string) bool {
			t.Helper()
			resp, err := perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
				Resource: objRef("group", group), Permission: "member", Subject: subRef("user", "alice")})
			if err != nil {
				t.Fatal(err)
			}
			return resp.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION
		}
		write(storage.OpTouch, nest("g0", "g1"), nest("g1", "g2"), nest("g2", "g3"), alice)
		if !member("g0") || !member("g3") || member("g9") {
			t.Errorf("disabled=%v: nested membership wrong after the first write", disabled)
		}
		write(storage.OpDelete, nest("g1", "g2"))
		if member("g0") || !member("g2") {
			t.Errorf("disabled=%v: nested membership wrong after a delete", disabled)
		}
		if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: reachSchema + "\n"}}); err != nil {
			t.Fatal(err)
		}
		write(storage.OpTouch, nest("g1", "g2"))
		if !member("g0") {
			t.Errorf("disabled=%v: nested membership wrong after a schema write", disabled)
		}
		if srv.reach != nil {
			if st := srv.reach.Stats(); st.Hits == 0 || st.Builds < 2 {
				t.Errorf("index stats %+v: want hits and a rebuild after the schema write", st)
			}
		}
		families, err := srv.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		var bytes float64
		found := false
		for _, f := range families {
			if f.GetName() == "pemba_reach_index_bytes" {
				found, bytes = true, f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		if found == disabled || (found && bytes <= 0) {
			t.Errorf("disabled=%v: pemba_reach_index_bytes found %v, %v bytes", disabled, found, bytes)
		}
		// The index has applied every write: its lag is 0 (the checks
		// above read at the head, which the index answered).
		lag, found := -1.0, false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if lag, found = gaugeValue(t, srv, "pemba_reach_index_lag"); !found || lag == 0 {
				break
			}
		}
		if found == disabled || (found && lag != 0) {
			t.Errorf("disabled=%v: pemba_reach_index_lag found %v, %v revisions", disabled, found, lag)
		}
	}
}

// gaugeValue returns the value of the gauge name in srv's registry.
func gaugeValue(t *testing.T, srv *Server, name string) (float64, bool) {
	t.Helper()
	families, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// folderSchema's viewers include groups, as nested-org's do: a folder's
// view is then no reverse closure from the subject, and the index's
// lineages answer it.
const folderSchema = `definition user {}
definition group {
 relation member: user | group#member
}
definition folder {
 relation parent: folder
 relation viewer: user | group#member
 permission view = viewer + parent->view
}
definition document {
 relation parent: folder
 relation viewer: user
 permission view = viewer + parent->view
}`

// TestReachIndexServesFolderTrees checks documents in nested folders over
// gRPC with the reachability index on and off: the answers agree and
// follow folders moved by writes, and only the server with the index
// answers the folder chains from it.
func TestReachIndexServesFolderTrees(t *testing.T) {
	for _, disabled := range []bool{false, true} {
		engine, err := pebble.Open(pebble.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { engine.Close() })
		srv := serveTest(t, Config{
			Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
			GRPCAddr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DisableReachIndex: disabled,
		})
		ctx := context.Background()
		if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: folderSchema}}); err != nil {
			t.Fatal(err)
		}
		parent := func(typ, child, folder string) graph.Relationship {
			return graph.Relationship{Resource: graph.ObjectRef{Type: typ, ID: child}, Relation: "parent",
				Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "folder", ID: folder}}}
		}
		viewer := graph.Relationship{Resource: graph.ObjectRef{Type: "folder", ID: "f0"}, Relation: "viewer",
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "alice"}}}
		write := func(op storage.Op, rels ...graph.Relationship) { writeIndexed(t, srv, engine, op, rels...) }
		perms := pb.NewPermissionServiceClient(dialTest(t, srv))
		view := func(doc string) bool {
			t.Helper()
			resp, err := perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fullyConsistent(),
				Resource: objRef("document", doc), Permission: "view", Subject: subRef("user", "alice")})
			if err != nil {
				t.Fatal(err)
			}
			return resp.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION
		}
		write(storage.OpTouch, parent("folder", "f1", "f0"), parent("folder", "f2", "f1"), parent("folder", "f3", "f2"),
			parent("document", "d", "f3"), parent("document", "e", "f9"), viewer)
		if !view("d") || view("e") {
			t.Errorf("disabled=%v: view wrong after the first write", disabled)
		}
		write(storage.OpDelete, parent("folder", "f2", "f1"))
		if view("d") {
			t.Errorf("disabled=%v: view wrong after a folder left its parent", disabled)
		}
		write(storage.OpTouch, parent("folder", "f9", "f1"), parent("folder", "f2", "f9"))
		if !view("d") || !view("e") {
			t.Errorf("disabled=%v: view wrong after folders moved", disabled)
		}
		if srv.reach != nil {
			if st := srv.reach.Stats(); st.AncestorHits == 0 || st.ParentRelations != 1 {
				t.Errorf("index stats %+v: want lineages answered from one parent relation", st)
			}
		}
	}
}

// writeIndexed writes rels to engine with op and waits until srv's
// reachability index (if it has one) has applied the write.
func writeIndexed(t *testing.T, srv *Server, engine storage.Engine, op storage.Op, rels ...graph.Relationship) {
	t.Helper()
	var muts []storage.Mutation
	for _, r := range rels {
		muts = append(muts, storage.Mutation{Op: op, Relationship: r})
	}
	rev, err := engine.Write(context.Background(), storage.WriteRequest{Mutations: muts})
	if err != nil {
		t.Fatal(err)
	}
	for srv.reach != nil {
		if got, ok := srv.reach.Revision(); ok && got >= rev {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
