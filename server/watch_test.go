package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

// TestWatchResourceTypes: a Watch filtered on a malformed type name, or on
// a type the schema does not define where the watch starts, is refused
// with INVALID_ARGUMENT naming the entry, instead of watching silently;
// a valid filter passes the changes of its types only.
func TestWatchResourceTypes(t *testing.T) {
	srv, engine, meta := newDocServer(t)
	watch := pb.NewWatchServiceClient(dialTest(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		types []string
		field string
		text  string
	}{
		{[]string{"doc", "Doc!"}, "resource_types[1]", "type name"},
		{[]string{"folder"}, "resource_types[0]", `"folder" is not defined`},
		{[]string{"doc", ""}, "resource_types[1]", "type name"},
	} {
		// Without the check, the stream would wait for changes: give up
		// after a while (a failure either way, nothing is timed).
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		stream, err := watch.Watch(cctx, &pb.WatchRequest{ResourceTypes: c.types})
		if err == nil {
			_, err = stream.Recv()
		}
		ccancel()
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), c.field) || !strings.Contains(st.Message(), c.text) {
			t.Errorf("watch %q: %v; want INVALID_ARGUMENT naming %s (%s)", c.types, err, c.field, c.text)
		}
	}

	stream, err := watch.Watch(ctx, &pb.WatchRequest{ResourceTypes: []string{"doc"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
		Relationship: graph.MustParseRelationship("doc:d#viewer@user:u")}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil || len(resp.GetUpdates()) != 1 || resp.GetUpdates()[0].GetRelationship().GetResource().GetId() != "d" {
		t.Fatalf("watch doc: %v, %v; want the write of doc:d", resp, err)
	}
}
