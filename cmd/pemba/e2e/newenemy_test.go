package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestNewEnemy: a check carrying a revoke's zookie (at_least_as_fresh)
// never sees the grant the revoke removed, however stale the server's
// minimize_latency revision is and whatever its cache holds. The server
// runs with a one-hour quantization, so minimize_latency checks keep
// caching the pre-revoke answer while revokes and checks race.
func TestNewEnemy(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--quantization", "1h")
	c := setup(t, s)
	ctx := context.Background()
	const rounds = 40
	stop := make(chan struct{})
	var bg sync.WaitGroup
	// Background: stale reads that cache "has permission" answers, and
	// unrelated writes that move the head.
	for g := range 2 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if g == 0 {
					_, _ = c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Resource: obj("document", fmt.Sprint("d", i%rounds)),
						Permission: "view", Subject: sub("user", "alice")})
				} else {
					_, _ = c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
						Updates: []*pb.RelationshipUpdate{touch(rel("document", fmt.Sprint("other", i%50), "viewer", "user", "bob"))}})
				}
			}
		}()
	}
	defer func() { close(stop); bg.Wait() }()

	for i := range rounds {
		doc := fmt.Sprint("d", i)
		grant := rel("document", doc, "viewer", "user", "alice")
		if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(grant)}}); err != nil {
			t.Fatal(err)
		}
		// Warm the cache with the grant at the current head.
		if r, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: fully(), Resource: obj("document", doc),
			Permission: "view", Subject: sub("user", "alice")}); err != nil || r.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
			t.Fatalf("round %d: grant not visible: %v %v", i, r.GetPermissionship(), err)
		}
		// Revoke: delete the grant, or (odd rounds) ban alice through the exclusion.
		revoke := del(grant)
		if i%2 == 1 {
			revoke = touch(rel("document", doc, "banned", "user", "alice"))
		}
		w, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{revoke}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for k := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cons := atLeast(w.GetWrittenAt())
				if k == 3 {
					cons = exact(w.GetWrittenAt())
				}
				r, err := c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: cons, Resource: obj("document", doc),
					Permission: "view", Subject: sub("user", "alice")})
				switch {
				case err != nil:
					errs <- err.Error()
				case r.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION:
					errs <- fmt.Sprintf("round %d: check with the revoke's zookie said %v", i, r.GetPermissionship())
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
}
