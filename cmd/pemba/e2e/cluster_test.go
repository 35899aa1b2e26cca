package e2e

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

const clusterToken = "e2e-cluster-token-0123456789"

// clusterTestSchema nests groups, so a check dispatches several levels of
// sub-problems.
const clusterTestSchema = `definition user {}
definition group {
	relation member: user | group#member
}
definition document {
	relation reader: user | group#member
	permission view = reader
}`

// TestClusterSurvivesKilledPeer: three `pemba serve --peers` processes on
// one PostgreSQL database dispatch sub-problems to each other; one is
// killed (SIGKILL) under load and the other two keep answering every
// check, correctly, by evaluating its share themselves.
func TestClusterSurvivesKilledPeer(t *testing.T) {
	url := pg.NewDatabase(t) // skips without PostgreSQL, fails under CI
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	nodes := make([]*server, 3)
	for i, addr := range addrs {
		// A later --grpc-addr overrides the harness's own.
		nodes[i] = startServer(t, "--datastore", "postgres", "--datastore-url", url, "--auto-migrate",
			"--grpc-addr", addr, "--peers", strings.Join(addrs, ","), "--cluster-token", clusterToken,
			"--dispatch-hedge-delay", "500ms")
		nodes[i].grpcAddr = addr
	}
	ctx := context.Background()
	c := nodes[0].client(tokenSecret)
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: clusterTestSchema}); err != nil {
		t.Fatal(err)
	}
	// group gN contains g(N+1) for N < 9 and user uN; document dK is read
	// by group g(K mod 10): user uN may view dK when N >= K mod 10.
	var ups []*pb.RelationshipUpdate
	for g := range 10 {
		ups = append(ups, touch(rel("group", fmt.Sprint("g", g), "member", "user", fmt.Sprint("u", g))))
		if g < 9 {
			ups = append(ups, touch(&pb.Relationship{Resource: obj("group", fmt.Sprint("g", g)), Relation: "member",
				Subject: &pb.SubjectRef{Object: obj("group", fmt.Sprint("g", g+1)), Relation: "member"}}))
		}
	}
	for d := range 50 {
		ups = append(ups, touch(&pb.Relationship{Resource: obj("document", fmt.Sprint("d", d)), Relation: "reader",
			Subject: &pb.SubjectRef{Object: obj("group", fmt.Sprint("g", d%10)), Relation: "member"}}))
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: ups}); err != nil {
		t.Fatal(err)
	}
	want := func(d, u int) pb.Permissionship {
		if u >= d%10 {
			return pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION
		}
		return pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION
	}

	// One loader per node; node 2 is killed a second in.
	var stop atomic.Bool
	var wg sync.WaitGroup
	checks := make([]atomic.Int64, 3)
	for i, n := range nodes {
		client := n.client(tokenSecret)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				d, u := k%50, (k/50)%10
				resp, err := client.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{
					Resource: obj("document", fmt.Sprint("d", d)), Permission: "view", Subject: sub("user", fmt.Sprint("u", u)),
					Consistency: fully()})
				if i == 2 {
					if err != nil {
						return // killed
					}
					continue
				}
				if err != nil {
					t.Errorf("node %d: check d%d u%d: %v", i, d, u, err)
					return
				}
				if resp.GetPermissionship() != want(d, u) {
					t.Errorf("node %d: check d%d u%d = %v, want %v", i, d, u, resp.GetPermissionship(), want(d, u))
					return
				}
				checks[i].Add(1)
			}
		}()
	}
	time.Sleep(time.Second)
	nodes[2].kill9()
	killedAt := [2]int64{checks[0].Load(), checks[1].Load()}
	time.Sleep(3 * time.Second)
	stop.Store(true)
	wg.Wait()
	for i := range 2 {
		if after := checks[i].Load() - killedAt[i]; after == 0 {
			t.Errorf("node %d answered no check after node 2 was killed", i)
		}
		m := metricsOf(t, nodes[i], "pemba_dispatch_")
		if m["pemba_dispatch_sent_total"] == 0 {
			t.Errorf("node %d dispatched nothing", i)
		}
		if metricsOf(t, nodes[i], `pemba_dispatch_fallbacks_total{peer="`+addrs[2]+`"`)["pemba_dispatch_fallbacks_total"] == 0 {
			t.Errorf("node %d never fell back on node 2, though it was killed", i)
		}
		t.Logf("node %d: %d checks (%d after the kill), metrics %v", i, checks[i].Load(), checks[i].Load()-killedAt[i], m)
	}
}

// metricsOf sums, per family, the samples of the node's /metrics whose
// line starts with prefix.
func metricsOf(t *testing.T, n *server, prefix string) map[string]float64 {
	t.Helper()
	resp, err := n.httpClient().Get(n.httpURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out[name] += v
		}
	}
	return out
}

// TestPeersNeedSharedDatastore: --peers is refused with a datastore of
// the server's own (the server tests cover the cluster token's rules).
func TestPeersNeedSharedDatastore(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--datastore", "memory", "--cluster-token", clusterToken}, "needs a datastore the servers share"},
		{[]string{"--datastore", "embedded", "--data-dir", t.TempDir(), "--cluster-token", clusterToken}, "needs a datastore the servers share"},
	} {
		args := append([]string{"serve", "--grpc-addr", freeAddr(t), "--http-addr", "", "--token", tokenName + "=" + tokenSecret,
			"--peers", "127.0.0.1:1,127.0.0.1:2"}, tc.args...)
		r := runCLI(t, nil, "", args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want an error with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
