package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/internal/pgtest"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/schema"
)

// Several `pemba serve` processes behind a load balancer share one SQL
// database. These tests start three on one fresh database (PostgreSQL,
// and CockroachDB when PEMBA_TEST_COCKROACH_URL names a cluster) and
// check the guarantees a client relies on whichever node answers: no
// relationship the schema forbids is ever stored, a zookie from one node
// is honoured by the others, Watch and the audit log see every node's
// writes, and a node killed or stopped mid-load stops none of the others.

// wideSchema and narrowSchema alternate in TestClusterSchemaWrites:
// narrowSchema drops the relation doc#editor and the subject type
// team#member from doc#viewer, so the relationships using either are
// valid only under wideSchema.
const (
	wideSchema = `definition user {}
definition team {
  relation member: user
}
definition doc {
  relation viewer: user | team#member
  relation editor: user
  relation banned: user
  permission view = viewer + editor - banned
}`
	narrowSchema = `definition user {}
definition team {
  relation member: user
}
definition doc {
  relation viewer: user
  relation banned: user
  permission view = viewer - banned
}`
)

// node is one server of a cluster with its client.
type node struct {
	name string
	*server
	c *client
	// disrupted is set once the test kills or stops the node on purpose.
	disrupted bool
}

// clusterStore is a SQL datastore the nodes of a cluster share.
type clusterStore struct {
	name string
	// database creates a fresh database for t and returns the serve
	// flags that open it.
	database func(t *testing.T) []string
}

// clusterStores are PostgreSQL (skipped when not installed, failed under
// CI) and the CockroachDB cluster PEMBA_TEST_COCKROACH_URL names (skipped
// without one).
var clusterStores = []clusterStore{
	{"postgres", func(t *testing.T) []string { return datastoreArgs(t, "postgres") }},
	{"cockroachdb", func(t *testing.T) []string {
		return []string{"--datastore", "cockroachdb", "--datastore-url", pgtest.CockroachDatabase(t), "--auto-migrate"}
	}},
}

// forEachStore runs test as a subtest on every clusterStore.
func forEachStore(t *testing.T, test func(t *testing.T, store clusterStore)) {
	for _, store := range clusterStores {
		t.Run(store.name, func(t *testing.T) { test(t, store) })
	}
}

// startCluster starts n servers (named A, B, C…) on one fresh database of
// store, each with the extra flags. They start at once, as the replicas
// of a deployment do, so they migrate the empty database concurrently.
func startCluster(t *testing.T, store clusterStore, n int, extra ...string) []*node {
	t.Helper()
	args := append(store.database(t), extra...)
	nodes := make([]*node, n)
	for i := range nodes {
		s := &server{t: t, args: args, dir: t.TempDir()}
		s.launch()
		t.Cleanup(func() { s.stop() })
		nodes[i] = &node{name: string(rune('A' + i)), server: s}
	}
	for _, n := range nodes {
		n.waitReady()
		n.c = n.client(tokenSecret)
	}
	t.Cleanup(func() { wantQuietLogs(t, nodes) })
	return nodes
}

// wantQuietLogs fails t if a node logged an error (a node the test
// disrupts on purpose is left out: its requests fail).
func wantQuietLogs(t *testing.T, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		if n.disrupted {
			continue
		}
		for line := range strings.Lines(n.log.String()) {
			if strings.Contains(line, "level=ERROR") || strings.Contains(line, "pemba: audit log index:") {
				t.Errorf("%s logged: %s", n.name, strings.TrimSpace(line))
			}
		}
	}
}

// snapshot is every stored relationship at one revision, and the schema
// in force there, read through one node.
type snapshot struct {
	at     *pb.Zookie
	schema string
	rels   []*pb.Relationship
}

// readSnapshot exports every relationship at the head of n's datastore,
// then reads the schema at exactly the export's revision.
func readSnapshot(ctx context.Context, n *node) (snapshot, error) {
	stream, err := n.c.rels.ExportRelationships(ctx, &pb.ExportRelationshipsRequest{Consistency: fully()})
	if err != nil {
		return snapshot{}, fmt.Errorf("export on %s: %w", n.name, err)
	}
	var snap snapshot
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return snapshot{}, fmt.Errorf("export on %s: %w", n.name, err)
		}
		snap.at = resp.GetReadAt()
		snap.rels = append(snap.rels, resp.GetRelationships()...)
	}
	sch, err := n.c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{Consistency: exact(snap.at)})
	if err != nil {
		return snapshot{}, fmt.Errorf("read schema on %s: %w", n.name, err)
	}
	snap.schema = sch.GetSchema()
	return snap, nil
}

// forbidden lists the relationships of snap that its schema refuses.
func (snap snapshot) forbidden() ([]string, error) {
	sch, err := schema.Compile("schema", snap.schema)
	if err != nil {
		return nil, fmt.Errorf("compile the schema read back: %w", err)
	}
	var bad []string
	for _, r := range snap.rels {
		rel := relationshipFromWire(r)
		if err := sch.ValidateRelationship(rel); err != nil {
			bad = append(bad, fmt.Sprintf("%s (%v)", rel, err))
		}
	}
	return bad, nil
}

// wantAllowed fails t if a snapshot read through n holds a relationship
// its own schema forbids.
func wantAllowed(t *testing.T, n *node, when string) {
	t.Helper()
	snap, err := readSnapshot(context.Background(), n)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	bad, err := snap.forbidden()
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if len(bad) > 0 {
		t.Fatalf("%s: %d stored relationships the schema in force forbids, read through %s: %s",
			when, len(bad), n.name, strings.Join(bad, "; "))
	}
}

// wideOnlyUpdates returns the writes of iteration i by writer w: one
// relationship valid under both schemas and, on most iterations, one
// valid only under wideSchema, in the same request so a request is
// accepted or refused whole.
func wideOnlyUpdates(w string, i int) []*pb.RelationshipUpdate {
	id := fmt.Sprintf("%s%d", w, i)
	ups := []*pb.RelationshipUpdate{touch(rel("doc", id, "viewer", "user", "u"))}
	switch i % 3 {
	case 0:
		ups = append(ups, touch(rel("doc", id, "editor", "user", "u")))
	case 1:
		ups = append(ups, touch(&pb.Relationship{Resource: obj("doc", id), Relation: "viewer",
			Subject: &pb.SubjectRef{Object: obj("team", "t"), Relation: "member"}}))
	}
	return ups
}

// importWideOnly imports wideOnlyUpdates' relationships of iteration i
// in one stream; an InvalidArgument refusal is expected under
// narrowSchema.
func importWideOnly(ctx context.Context, c *client, w string, i int) error {
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		return err
	}
	var rels []*pb.Relationship
	for _, u := range wideOnlyUpdates(w, i) {
		rels = append(rels, u.GetRelationship())
	}
	if err := stream.Send(&pb.ImportRelationshipsRequest{Relationships: rels}); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// narrow deletes what narrowSchema forbids and writes narrowSchema
// through n, again until no write on another node slips in between the
// delete and the schema write. It returns how many attempts it took.
func narrow(t *testing.T, n *node) int {
	t.Helper()
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		for _, f := range []*pb.RelationshipFilter{
			{ResourceType: "doc", Relation: "editor"},
			{ResourceType: "doc", Relation: "viewer", Subject: &pb.SubjectFilter{Type: "team"}},
		} {
			if _, err := n.c.rels.DeleteRelationships(ctx, &pb.DeleteRelationshipsRequest{Filter: f}); err != nil {
				t.Fatalf("delete on %s: %v", n.name, err)
			}
		}
		_, err := n.c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: narrowSchema})
		if err == nil {
			return attempt
		}
		if status.Code(err) != codes.FailedPrecondition || attempt == 200 {
			t.Fatalf("narrow the schema on %s (attempt %d): %v", n.name, attempt, err)
		}
	}
}

// TestClusterSchemaWrites: node A narrows the schema, and each node in
// turn widens it again, while B and C write (and import) relationships
// valid only under the wide one. After every round, and while the writes go on, a
// snapshot read through any node holds no relationship the schema in
// force at that snapshot forbids.
func TestClusterSchemaWrites(t *testing.T) { forEachStore(t, testClusterSchemaWrites) }

func testClusterSchemaWrites(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3)
	a := nodes[0]
	ctx := context.Background()
	if _, err := a.c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: wideSchema}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var (
		wg               sync.WaitGroup
		accepted, denied atomic.Int64
	)
	for _, w := range nodes[1:] {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if i%5 == 4 {
					err = importWideOnly(ctx, w.c, w.name, i)
				} else {
					_, err = w.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: wideOnlyUpdates(w.name, i)})
				}
				switch status.Code(err) {
				case codes.OK:
					accepted.Add(1)
				case codes.InvalidArgument:
					denied.Add(1) // refused under narrowSchema
				default:
					t.Errorf("write on %s: %v", w.name, err)
					return
				}
			}
		})
	}
	// A checker reads snapshots through every node while the writes go on.
	checked := make(chan error, 1)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				checked <- nil
				return
			default:
			}
			n := nodes[i%len(nodes)]
			snap, err := readSnapshot(ctx, n)
			if err == nil {
				var bad []string
				if bad, err = snap.forbidden(); err == nil && len(bad) > 0 {
					err = fmt.Errorf("snapshot through %s holds %d relationships its schema forbids: %s", n.name, len(bad), strings.Join(bad, "; "))
				}
			}
			if err != nil {
				checked <- err
				return
			}
		}
	})

	const rounds = 12
	attempts := 0
	for round := range rounds {
		widener := nodes[round%len(nodes)]
		if _, err := widener.c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: wideSchema}); err != nil {
			t.Fatalf("round %d: widen on %s: %v", round, widener.name, err)
		}
		time.Sleep(30 * time.Millisecond) // let wide-only writes land (ordering only)
		attempts += narrow(t, a)
		for _, n := range nodes {
			wantAllowed(t, n, fmt.Sprintf("round %d, through %s", round, n.name))
		}
	}
	close(stop)
	wg.Wait()
	if err := <-checked; err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		wantAllowed(t, n, "at the end, through "+n.name)
	}
	if accepted.Load() == 0 || denied.Load() == 0 {
		t.Fatalf("writes accepted %d, refused %d: the rounds did not exercise both schemas", accepted.Load(), denied.Load())
	}
	t.Logf("%d rounds: %d writes accepted, %d refused by the narrow schema, %d schema-narrowing attempts",
		rounds, accepted.Load(), denied.Load(), attempts)
}

// checkView asks n whether user:u may view doc:d at consistency cons.
func checkView(ctx context.Context, n *node, doc, user string, cons *pb.Consistency) (pb.Permissionship, error) {
	r, err := n.c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: cons,
		Resource: obj("document", doc), Permission: "view", Subject: sub("user", user)})
	return r.GetPermissionship(), err
}

// TestClusterZookies: a revoke through node A is never missed by a check
// on B or C carrying its zookie, however stale their minimize_latency
// revision (one hour) and whatever their caches hold; a grant through A
// is seen by an at_least_as_fresh read on B.
func TestClusterZookies(t *testing.T) { forEachStore(t, testClusterZookies) }

func testClusterZookies(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3, "--quantization", "1h")
	a := nodes[0]
	ctx := context.Background()
	setup(t, a.server)
	const rounds = 30
	// Warm every node's minimize_latency revision and check cache before
	// any grant, so they would answer from a stale head.
	for _, n := range nodes {
		if _, err := checkView(ctx, n, "d0", "alice", nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rounds {
		doc := fmt.Sprint("d", i)
		grant := rel("document", doc, "viewer", "user", "alice")
		w, err := a.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touch(grant)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes[1:] {
			// The grant is visible at its zookie, through a read and a check,
			// and the check caches HAS_PERMISSION at that revision.
			stream, err := n.c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: atLeast(w.GetWrittenAt()),
				Filter: &pb.RelationshipFilter{ResourceType: "document", ResourceIds: []string{doc}}})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := drain(stream.Recv); err != nil || got != 1 {
				t.Fatalf("round %d: read on %s with the grant's zookie found %d relationships (err %v), want 1", i, n.name, got, err)
			}
			if p, err := checkView(ctx, n, doc, "alice", atLeast(w.GetWrittenAt())); err != nil || p != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
				t.Fatalf("round %d: check on %s with the grant's zookie: %v %v", i, n.name, p, err)
			}
		}
		// Revoke through A: delete the grant, or (odd rounds) ban alice.
		revoke := del(grant)
		if i%2 == 1 {
			revoke = touch(rel("document", doc, "banned", "user", "alice"))
		}
		w, err = a.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{revoke}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, n := range nodes[1:] {
			for _, cons := range []*pb.Consistency{atLeast(w.GetWrittenAt()), exact(w.GetWrittenAt())} {
				wg.Go(func() {
					p, err := checkView(ctx, n, doc, "alice", cons)
					switch {
					case err != nil:
						t.Errorf("round %d: check on %s after the revoke: %v", i, n.name, err)
					case p != pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION:
						t.Errorf("round %d: check on %s with the revoke's zookie (%T) said %v", i, n.name, cons.GetRequirement(), p)
					}
				})
			}
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// TestClusterSchemaAtRevision: a schema written through A is in force,
// at its zookie, on B and C at once: a check of a permission only the new
// schema has succeeds there, and at an older zookie the permission is
// still unknown.
func TestClusterSchemaAtRevision(t *testing.T) { forEachStore(t, testClusterSchemaAtRevision) }

func testClusterSchemaAtRevision(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3, "--quantization", "1h")
	a := nodes[0]
	ctx := context.Background()
	c := setup(t, a.server)
	w, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{
		touch(rel("document", "d", "viewer", "user", "alice"))}})
	if err != nil {
		t.Fatal(err)
	}
	before := w.GetWrittenAt()
	for _, n := range nodes { // warm every node's schema at the old revision
		if _, err := checkView(ctx, n, "d", "alice", atLeast(before)); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 10 {
		perm := fmt.Sprint("perm", round)
		next := testSchema[:len(testSchema)-1] + fmt.Sprintf("  permission %s = viewer\n}", perm)
		sw, err := a.c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: next})
		if err != nil {
			t.Fatalf("round %d: write schema: %v", round, err)
		}
		for _, n := range nodes[1:] {
			r, err := n.c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: atLeast(sw.GetWrittenAt()),
				Resource: obj("document", "d"), Permission: perm, Subject: sub("user", "alice")})
			if err != nil || r.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
				t.Fatalf("round %d: check of the new permission %s on %s at the schema write's zookie: %v %v",
					round, perm, n.name, r.GetPermissionship(), err)
			}
			_, err = n.c.perms.CheckPermission(ctx, &pb.CheckPermissionRequest{Consistency: exact(before),
				Resource: obj("document", "d"), Permission: perm, Subject: sub("user", "alice")})
			if status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("round %d: check of %s on %s at a revision before it existed: %v, want a refusal", round, perm, n.name, err)
			}
		}
	}
}

// TestClusterWatchAndAudit: a Watch on B reports the writes made through
// A and C, and the audit log read through any node holds the writes of
// every node.
func TestClusterWatchAndAudit(t *testing.T) { forEachStore(t, testClusterWatchAndAudit) }

func testClusterWatchAndAudit(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setup(t, a.server)
	start, err := b.c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{Consistency: fully()})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := b.c.watch.Watch(ctx, &pb.WatchRequest{Since: start.GetReadAt(), ResourceTypes: []string{"document"}})
	if err != nil {
		t.Fatal(err)
	}
	const perNode = 20
	want := map[string]bool{}
	var wg sync.WaitGroup
	for _, n := range nodes {
		for i := range perNode {
			want[fmt.Sprintf("%s%d", n.name, i)] = true
		}
		wg.Go(func() {
			for i := range perNode {
				_, err := n.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Reason: "through " + n.name,
					Updates: []*pb.RelationshipUpdate{touch(rel("document", fmt.Sprintf("%s%d", n.name, i), "viewer", "user", "u"))}})
				if err != nil {
					t.Errorf("write through %s: %v", n.name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	seen := map[string]bool{}
	for len(seen) < len(want) {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatalf("watch on B after %d of %d writes: %v", len(seen), len(want), err)
		}
		for _, u := range resp.GetUpdates() {
			id := u.GetRelationship().GetResource().GetId()
			if !want[id] || seen[id] {
				t.Fatalf("watch on B reported an unexpected or repeated write to document:%s", id)
			}
			if resp.GetReason() != "through "+id[:1] {
				t.Errorf("watch on B: document:%s reported with reason %q, want %q", id, resp.GetReason(), "through "+id[:1])
			}
			seen[id] = true
		}
	}

	for _, n := range nodes {
		got := auditedResources(t, n.c, "document")
		if !maps.Equal(got, want) {
			t.Errorf("audit log read through %s: %d documents, want the %d written through every node: missing %v",
				n.name, len(got), len(want), missing(want, got))
		}
		v, err := n.c.audit.VerifyAudit(ctx, &pb.VerifyAuditRequest{})
		if err != nil || !v.GetIntact() {
			t.Errorf("verify through %s = %v, %v; want an intact chain", n.name, v, err)
		}
	}
	out := b.mustCLI("audit", "--resource", "document")
	for _, n := range nodes {
		if !strings.Contains(out.stdout, "document:"+n.name+"0") {
			t.Errorf("pemba audit through B does not show the writes through %s:\n%s", n.name, out.stdout)
		}
	}
}

// missing lists the keys of want that got lacks, sorted.
func missing(want, got map[string]bool) []string {
	var out []string
	for k := range want {
		if !got[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestClusterNodeKilled: SIGKILL one node mid-load; the others keep
// answering writes and checks, and every write a surviving node
// acknowledged is readable through the other survivor.
func TestClusterNodeKilled(t *testing.T) { forEachStore(t, testClusterNodeKilled) }

func testClusterNodeKilled(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3)
	ctx := context.Background()
	setup(t, nodes[0].server)
	victim, survivors := nodes[2], nodes[:2]

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex // guards acked and failures
		acked   = map[string][]string{}
		failure []string
	)
	stop := make(chan struct{})
	var ops atomic.Int64
	for _, n := range nodes {
		for g := range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("%s%d-%d", n.name, g, i)
					var err error
					if i%2 == 0 {
						_, err = n.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
							Updates: []*pb.RelationshipUpdate{touch(rel("document", id, "viewer", "user", "u"))}})
					} else {
						_, err = checkView(ctx, n, id, "u", fully())
					}
					ops.Add(1)
					if n == victim {
						if err != nil {
							return // expected once it is killed
						}
						continue
					}
					mu.Lock()
					if err != nil {
						failure = append(failure, fmt.Sprintf("%s: %v", n.name, err))
					} else if i%2 == 0 {
						acked[n.name] = append(acked[n.name], id)
					}
					mu.Unlock()
				}
			})
		}
	}
	for ops.Load() < 150 {
		time.Sleep(5 * time.Millisecond)
	}
	victim.disrupted = true
	victim.kill9()
	before := ops.Load()
	for ops.Load() < before+300 {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(failure) > 0 {
		t.Fatalf("%d requests to surviving nodes failed after %s was killed, first: %s", len(failure), victim.name, failure[0])
	}
	for i, n := range survivors {
		other := survivors[1-i]
		stream, err := other.c.rels.ReadRelationships(ctx, &pb.ReadRelationshipsRequest{Consistency: fully(),
			Filter: &pb.RelationshipFilter{ResourceType: "document"}})
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			found[resp.GetRelationship().GetResource().GetId()] = true
		}
		for _, id := range acked[n.name] {
			if !found[id] {
				t.Fatalf("write of document:%s acknowledged by %s is not readable through %s", id, n.name, other.name)
			}
		}
		if len(acked[n.name]) == 0 {
			t.Fatalf("%s acknowledged no write", n.name)
		}
	}
	if _, err := survivors[0].c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: testSchema + "\n"}); err != nil {
		t.Fatalf("schema write after %s was killed: %v", victim.name, err)
	}
}

// TestClusterLoadtest: `pemba loadtest` spread over the three nodes with
// the new-enemy workload — each revoke's zookie carried to another node —
// sees no violation and reports a row per node.
func TestClusterLoadtest(t *testing.T) { forEachStore(t, testClusterLoadtest) }

func testClusterLoadtest(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3)
	var endpoints, metrics []string
	for _, n := range nodes {
		endpoints = append(endpoints, n.grpcAddr)
		metrics = append(metrics, n.httpURL()+"/metrics")
	}
	r := runCLI(t, nil, "", "loadtest", "--endpoint", strings.Join(endpoints, ","), "--metrics-url", strings.Join(metrics, ","),
		"--token", tokenSecret, "--quiet", "--dataset", "nested-org", "--scale", "0.05",
		"--workload", "new-enemy", "--concurrency", "4", "--duration", "1s")
	if r.code != 0 || !strings.Contains(r.stdout, " 0 violations; 0 missed grants") {
		t.Fatalf("loadtest over three nodes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, ep := range endpoints {
		if !strings.Contains(r.stdout, "\n"+ep+" check") || !strings.Contains(r.stdout, "\n"+ep+" write") {
			t.Errorf("loadtest report has no check and write rows for %s:\n%s", ep, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "warning:") {
		t.Errorf("loadtest over three nodes warned:\n%s", r.stdout)
	}
	t.Logf("\n%s", r.stdout)
}

// TestClusterNodeStopped: SIGSTOP one node mid-load, again and again: it
// is often stopped holding the revision counter's lock, which every
// write waits for, yet the other nodes' writes go on once the database
// ends its idle transaction (the datastore URL sets the timeout to one
// second here, for a short test; the default is ten). Resumed, the node
// serves again.
func TestClusterNodeStopped(t *testing.T) { forEachStore(t, testClusterNodeStopped) }

func testClusterNodeStopped(t *testing.T, store clusterStore) {
	const idleTimeout = time.Second
	nodes := startCluster(t, withURLParam(store, "idle_in_transaction_session_timeout", fmt.Sprint(idleTimeout.Milliseconds())), 3)
	ctx := context.Background()
	setup(t, nodes[0].server)
	a, victim := nodes[0], nodes[2]
	victim.disrupted = true // its writes fail when the database ends them
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, _ = victim.c.rels.WriteRelationships(wctx, &pb.WriteRelationshipsRequest{
					Updates: []*pb.RelationshipUpdate{touch(rel("document", fmt.Sprintf("c%d-%d", g, i), "viewer", "user", "u"))}})
				cancel()
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	stalls := 0
	for round := 0; round < 20 && stalls < 3; round++ {
		time.Sleep(20 * time.Millisecond) // let the victim's writes get going
		if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 20*idleTimeout)
		_, err := a.c.rels.WriteRelationships(wctx, &pb.WriteRelationshipsRequest{
			Updates: []*pb.RelationshipUpdate{touch(rel("document", fmt.Sprint("a", round), "viewer", "user", "u"))}})
		cancel()
		took := time.Since(start)
		if err := victim.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("round %d: a write on %s while %s is stopped: %v (after %s)", round, a.name, victim.name, err, took.Round(time.Millisecond))
		}
		if took > idleTimeout/2 {
			stalls++ // the victim held the lock when it stopped
		}
	}
	if stalls == 0 {
		t.Log("the stopped node never held the counter's lock; nothing was shown")
	}
	r, err := victim.c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{
		Updates: []*pb.RelationshipUpdate{touch(rel("document", "resumed", "viewer", "user", "u"))}})
	if err != nil {
		t.Fatalf("a write on %s after it resumed: %v", victim.name, err)
	}
	if p, err := checkView(ctx, a, "resumed", "u", atLeast(r.GetWrittenAt())); err != nil || p != pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION {
		t.Fatalf("check on %s of the resumed node's write: %v %v", a.name, p, err)
	}
	t.Logf("%d of the stops caught %s holding the counter's lock", stalls, victim.name)
}

// withURLParam returns store with key=value added to its datastore URL.
func withURLParam(store clusterStore, key, value string) clusterStore {
	database := store.database
	store.database = func(t *testing.T) []string {
		args := slices.Clone(database(t))
		i := slices.Index(args, "--datastore-url") + 1
		u, err := url.Parse(args[i])
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		args[i] = u.String()
		return args
	}
	return store
}

// TestClusterConcurrentSchemaWrites: every node writes schema versions at
// once. Each write commits or is refused with a code that says to retry;
// the schema read back afterwards is one of those written.
func TestClusterConcurrentSchemaWrites(t *testing.T) {
	forEachStore(t, testClusterConcurrentSchemaWrites)
}

func testClusterConcurrentSchemaWrites(t *testing.T, store clusterStore) {
	nodes := startCluster(t, store, 3)
	ctx := context.Background()
	setup(t, nodes[0].server)
	const perNode = 25
	var (
		wg                 sync.WaitGroup
		committed, retried atomic.Int64
	)
	for _, n := range nodes {
		wg.Go(func() {
			for i := range perNode {
				_, err := n.c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: testSchema + fmt.Sprintf("\n// %s %d\n", n.name, i)})
				switch status.Code(err) {
				case codes.OK:
					committed.Add(1)
				case codes.Aborted:
					retried.Add(1)
				default:
					t.Errorf("schema write %d on %s: %v", i, n.name, err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d schema writes committed, %d refused with ABORTED", committed.Load(), retried.Load())
	got, err := nodes[1].c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{Consistency: fully()})
	if err != nil || !strings.HasPrefix(got.GetSchema(), testSchema) {
		t.Fatalf("schema read back: %v\n%s", err, got.GetSchema())
	}
}
