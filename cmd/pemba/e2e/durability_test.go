package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestDurabilityAfterKill writes relationships through the API from
// several clients, kills the embedded server with SIGKILL mid-stream,
// restarts it on the same data directory, and finds every acknowledged
// write — each with its audit entry, and no audit entry without its
// write, in an intact hash chain.
func TestDurabilityAfterKill(t *testing.T) {
	s := startServer(t, datastoreArgs(t, "embedded")...)
	c := setup(t, s)
	const writers, perWriter = 4, 60
	var (
		mu    sync.Mutex // guards acked
		acked []string
		wg    sync.WaitGroup
	)
	killed := make(chan struct{})
	var sent atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fmt.Sprintf("w%d-%d", w, i)
				_, err := c.rels.WriteRelationships(context.Background(), &pb.WriteRelationshipsRequest{
					Updates: []*pb.RelationshipUpdate{touch(rel("document", id, "viewer", "user", "u"))}})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				if sent.Add(1) == writers*perWriter/2 {
					close(killed)
				}
			}
		}()
	}
	<-killed
	s.kill9()
	wg.Wait()
	if len(acked) < writers*perWriter/2 {
		t.Fatalf("only %d writes acknowledged before the kill", len(acked))
	}

	s.restart()
	c = s.client(tokenSecret)
	stream, err := c.rels.ReadRelationships(context.Background(), &pb.ReadRelationshipsRequest{Consistency: fully(),
		Filter: &pb.RelationshipFilter{ResourceType: "document"}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for {
		resp, err := stream.Recv()
		if err != nil {
			break
		}
		found[resp.GetRelationship().GetResource().GetId()] = true
	}
	var lost []string
	for _, id := range acked {
		if !found[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d of %d acknowledged writes lost after kill -9: %v", len(lost), len(acked), lost)
	}
	audited := auditedResources(t, c, "document")
	if !maps.Equal(audited, found) {
		var diff []string
		for id := range audited {
			if !found[id] {
				diff = append(diff, "audited only: "+id)
			}
		}
		for id := range found {
			if !audited[id] {
				diff = append(diff, "stored only: "+id)
			}
		}
		slices.Sort(diff)
		t.Errorf("after kill -9 the audit log and the store disagree (the write and its entry must survive together): %v", diff)
	}
	v, err := c.audit.VerifyAudit(context.Background(), &pb.VerifyAuditRequest{})
	if err != nil || !v.GetIntact() {
		t.Fatalf("verify after kill -9 = %v, %v; want an intact chain", v, err)
	}
}

// auditedResources reads the IDs of the resources of typ the audit log
// records a write to, paging through ReadAudit.
func auditedResources(t *testing.T, c *client, typ string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	cursor := ""
	for {
		stream, err := c.audit.ReadAudit(context.Background(), &pb.ReadAuditRequest{ResourceType: typ, Cursor: cursor,
			Kinds: []pb.AuditEventKind{pb.AuditEventKind_AUDIT_EVENT_KIND_CREATED, pb.AuditEventKind_AUDIT_EVENT_KIND_TOUCHED}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[resp.GetEvent().GetRelationship().GetResource().GetId()] = true
			cursor = resp.GetCursor()
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// TestGracefulShutdown sends SIGTERM while clients are mid-request: every
// request the server accepted completes, the process exits 0 and the
// embedded store is closed cleanly (it reopens with everything).
func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, datastoreArgs(t, "embedded")...)
	c := setup(t, s)
	ctx := context.Background()
	var updates []*pb.RelationshipUpdate
	for i := range 200 {
		updates = append(updates, touch(rel("group", "g", "member", "user", fmt.Sprint("u", i))))
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: updates[:100]}); err != nil {
		t.Fatal(err)
	}

	var (
		wg       sync.WaitGroup
		ok       atomic.Int64
		mu       sync.Mutex // guards failures
		failures []string
	)
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i%4 == 0 {
					_, err = c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
						Updates: []*pb.RelationshipUpdate{touch(&pb.Relationship{Resource: obj("document", fmt.Sprintf("d%d-%d", w, i)), Relation: "viewer",
							Subject: &pb.SubjectRef{Object: obj("group", "g"), Relation: "member"}})}})
				} else {
					_, err = c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fully(),
						Resource: obj("document", fmt.Sprintf("d%d-%d", w, i-1)), Permission: "view", Subject: sub("user", "u7")})
				}
				switch code := status.Code(err); code {
				case codes.OK:
					ok.Add(1)
				case codes.Unavailable:
					// Refused before it started: the server was already
					// closing the connection. Not an in-flight failure.
					time.Sleep(5 * time.Millisecond)
				default:
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				if i > 10000 {
					return
				}
			}
		}()
	}
	for ok.Load() < 200 {
		time.Sleep(5 * time.Millisecond)
	}
	err := s.stop()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Errorf("pemba serve exited with %v after SIGTERM:\n%s", err, s.log)
	}
	if len(failures) > 0 {
		t.Errorf("%d requests failed during shutdown, first: %s", len(failures), failures[0])
	}
	if !strings.Contains(s.log.String(), "datastore closed") {
		t.Errorf("log does not say the datastore was closed:\n%s", s.log)
	}

	s.restart()
	stream, err := s.client(tokenSecret).rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: fully(),
		Filter: &pb.RelationshipFilter{ResourceType: "group"}})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := drain(stream.Recv); err != nil || n != 100 {
		t.Errorf("after restart: %d group members (err %v), want 100", n, err)
	}
}
