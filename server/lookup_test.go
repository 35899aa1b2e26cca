package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

const lookupSchema = `definition user {}
definition group {
	relation member: user | group#member
}
definition doc {
	relation viewer: user | group#member
	permission view = viewer
}`

// lookupPage runs one LookupResources call and returns the IDs and the
// last cursor.
func lookupPage(t *testing.T, client pb.PermissionServiceClient, req *pb.LookupResourcesRequest) ([]string, string, error) {
	t.Helper()
	stream, err := client.LookupResources(context.Background(), req)
	if err != nil {
		return nil, "", err
	}
	msgs, err := drainStream(stream.Recv)
	var ids []string
	cursor := ""
	for _, m := range msgs {
		ids = append(ids, m.GetResourceId())
		cursor = m.GetCursor()
	}
	return ids, cursor, err
}

// TestLookupResourcesCursor pages through a result over the API: the
// pages hold every resource once, in ID order, the same as one call.
func TestLookupResourcesCursor(t *testing.T) {
	_, engine, cc := newSchemaServer(t, lookupSchema, "group:g#member@user:ann", "group:h#member@group:g#member")
	importRels(t, engine, 1200, func(i int) string {
		switch i % 3 {
		case 0:
			return fmt.Sprintf("doc:d%04d#viewer@user:ann", i)
		case 1:
			return fmt.Sprintf("doc:d%04d#viewer@group:g#member", i)
		}
		return fmt.Sprintf("doc:d%04d#viewer@group:h#member", i-1) // also reached through g
	})
	client := pb.NewPermissionServiceClient(cc)
	req := &pb.LookupResourcesRequest{Consistency: fullyConsistent(), ResourceType: "doc", Permission: "view", Subject: subRef("user", "ann")}
	all, _, err := lookupPage(t, client, req)
	if err != nil || len(all) != 800 {
		t.Fatalf("one call: %d results, %v", len(all), err)
	}
	var paged []string
	req.Limit = 70
	for page := 0; page < 100; page++ {
		ids, cursor, err := lookupPage(t, client, req)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		paged = append(paged, ids...)
		if len(ids) < int(req.Limit) {
			break
		}
		req.Cursor = cursor
	}
	if !slices.Equal(paged, all) || !slices.IsSorted(paged) {
		t.Errorf("pages hold %d results (sorted: %v), one call %d", len(paged), slices.IsSorted(paged), len(all))
	}
}

// TestLookupResourcesStaleCursor: a walk-order cursor whose results no
// longer match is refused with ABORTED, asking for a restart.
func TestLookupResourcesStaleCursor(t *testing.T) {
	srv, _, cc := newSchemaServer(t, lookupSchema, "group:g#member@user:ann", "group:h#member@user:ann")
	client := pb.NewPermissionServiceClient(cc)
	req := &pb.LookupResourcesRequest{Consistency: fullyConsistent(), ResourceType: "group", Permission: "member", Subject: subRef("user", "ann"), Limit: 1}
	ids, cursor, err := lookupPage(t, client, req)
	if err != nil || len(ids) != 1 {
		t.Fatalf("page 1: %v %v", ids, err)
	}
	rev, _, err := srv.revs.Zookies().DecodeCursor(cursor)
	if err != nil {
		t.Fatal(err)
	}
	req.Cursor = srv.revs.Zookies().EncodeCursor(rev, fmt.Sprintf("lr1.%d.1.%x", rev, 12345)) // another walk's digest
	_, _, err = lookupPage(t, client, req)
	if st := status.Convert(err); st.Code() != codes.Aborted || !strings.Contains(st.Message(), "restart") {
		t.Errorf("stale cursor: %v, want ABORTED asking for a restart", err)
	}
}
