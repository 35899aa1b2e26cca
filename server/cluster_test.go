package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	dpb "github.com/pembadb/pemba/proto/pemba/dispatch/v1"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

const testClusterToken = "cluster-test-token-0123456789"

// clusterSchema has recursion (groups, folders whose parents may form a
// cycle) and an exclusion, so sub-problems nest several levels deep.
const clusterSchema = `definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation parent: folder
	relation viewer: user | group#member
	permission view = viewer + parent->view
}
definition doc {
	relation parent: folder
	relation viewer: user | group#member
	relation banned: user
	permission view = (viewer + parent->view) - banned
}`

// freeAddrs returns n loopback addresses with free ports (closed again,
// so servers can listen on them; another process could take one meanwhile,
// which fails the test's Serve loudly rather than silently).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out
}

// newClusterServer serves engine on addr as one of peers (none: alone),
// its configuration changed by edits.
func newClusterServer(t *testing.T, engine storage.Engine, addr string, peers []string, edits ...func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Engine: engine, InstanceID: "test", Tokens: []Token{{Name: "tester", Secret: testSecret}},
		GRPCAddr: addr, Quantization: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Peers:  peers, DispatchHedgeDelay: 2 * time.Second, DispatchTimeout: 5 * time.Second,
	}
	if len(peers) > 0 {
		cfg.ClusterToken = testClusterToken
	}
	for _, edit := range edits {
		edit(&cfg)
	}
	return serveTest(t, cfg)
}

// randomGraph writes clusterSchema and random relationships.
func randomGraph(t *testing.T, engine storage.Engine, rng *mrand.Rand) {
	t.Helper()
	ctx := context.Background()
	meta := storage.WriteMetadata{Actor: "t"}
	if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: clusterSchema}, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	var rels []string
	for g := range 12 {
		for range 3 {
			if rng.IntN(3) == 0 {
				rels = append(rels, fmt.Sprintf("group:g%d#member@group:g%d#member", g, rng.IntN(12)))
			} else {
				rels = append(rels, fmt.Sprintf("group:g%d#member@user:u%d", g, rng.IntN(30)))
			}
		}
	}
	for f := range 20 {
		rels = append(rels, fmt.Sprintf("folder:f%d#parent@folder:f%d", f, rng.IntN(20)))
		rels = append(rels, fmt.Sprintf("folder:f%d#viewer@group:g%d#member", f, rng.IntN(12)))
		if rng.IntN(2) == 0 {
			rels = append(rels, fmt.Sprintf("folder:f%d#viewer@user:u%d", f, rng.IntN(30)))
		}
	}
	for d := range 40 {
		rels = append(rels, fmt.Sprintf("doc:d%d#parent@folder:f%d", d, rng.IntN(20)))
		if rng.IntN(3) == 0 {
			rels = append(rels, fmt.Sprintf("doc:d%d#viewer@user:u%d", d, rng.IntN(30)))
		}
		if rng.IntN(4) == 0 {
			rels = append(rels, fmt.Sprintf("doc:d%d#banned@user:u%d", d, rng.IntN(30)))
		}
	}
	slices.Sort(rels)
	rels = slices.Compact(rels)
	var muts []storage.Mutation
	for _, r := range rels {
		muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(r)})
	}
	if _, err := engine.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
}

type clusterCheck struct{ doc, user string }

// checkAll asks every question of qs through cc and returns the answers.
func checkAll(t *testing.T, cc *grpc.ClientConn, qs []clusterCheck) []pb.Permissionship {
	t.Helper()
	client := pb.NewPermissionServiceClient(cc)
	out := make([]pb.Permissionship, len(qs))
	for i, q := range qs {
		resp, err := client.CheckPermission(context.Background(), &pb.CheckPermissionRequest{
			Resource: objRef("doc", q.doc), Permission: "view",
			Subject:     &pb.SubjectRef{Object: objRef("user", q.user)},
			Consistency: &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}},
		})
		if err != nil {
			t.Fatalf("check doc:%s view user:%s: %v", q.doc, q.user, err)
		}
		out[i] = resp.GetPermissionship()
	}
	return out
}

// counter sums the samples of a counter family whose labels include
// every label=value of match.
func counter(t *testing.T, srv *Server, name string, match ...string) float64 {
	t.Helper()
	families, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, kv := range match {
				k, v, _ := strings.Cut(kv, "=")
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == v)
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestClusterDispatch: three servers sharing one datastore give the
// answers a lone server gives, each sub-problem is answered by its
// owner (and cached there: a second pass is answered from the owners'
// caches), and a stopped server makes the others evaluate its share
// themselves without a failed check.
func TestClusterDispatch(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	rng := mrand.New(mrand.NewPCG(7, 11))
	randomGraph(t, engine, rng)
	var qs []clusterCheck
	for d := range 40 {
		for u := range 30 {
			if rng.IntN(4) == 0 {
				qs = append(qs, clusterCheck{fmt.Sprintf("d%d", d), fmt.Sprintf("u%d", u)})
			}
		}
	}

	alone := newClusterServer(t, engine, "127.0.0.1:0", nil)
	want := checkAll(t, dialTest(t, alone), qs)

	addrs := freeAddrs(t, 3)
	nodes := make([]*Server, 3)
	for i, a := range addrs {
		nodes[i] = newClusterServer(t, engine, a, addrs)
	}
	// Each pass asks every question of a different node.
	for pass := range 3 {
		got := checkAll(t, dialTest(t, nodes[pass]), qs)
		for i := range qs {
			if got[i] != want[i] {
				t.Errorf("pass %d: doc:%s view user:%s = %v through the cluster, %v alone", pass, qs[i].doc, qs[i].user, got[i], want[i])
			}
		}
	}
	for i, n := range nodes {
		self := addrs[i]
		if s := counter(t, n, "pemba_dispatch_sent_total", "peer="+self); s != 0 {
			t.Errorf("node %d dispatched %v problems to itself", i, s)
		}
		if f := counter(t, n, "pemba_dispatch_fallbacks_total"); f != 0 {
			t.Errorf("node %d fell back %v times with every peer up", i, f)
		}
		if r := counter(t, n, "pemba_dispatch_received_total"); r == 0 {
			t.Errorf("node %d received no dispatch", i)
		}
		for j, peer := range addrs {
			if j != i && counter(t, n, "pemba_dispatch_sent_total", "peer="+peer) == 0 {
				t.Errorf("node %d sent nothing to node %d", i, j)
			}
		}
	}
	// Passes 2 and 3 asked the same questions of other nodes: their
	// shares were in the owners' caches.
	hits, received := 0.0, 0.0
	for _, n := range nodes {
		hits += counter(t, n, "pemba_dispatch_received_cache_hits_total")
		received += counter(t, n, "pemba_dispatch_received_resources_total")
	}
	if hits == 0 || hits >= received {
		t.Errorf("cluster cache hits %v of %v received resources", hits, received)
	}
	t.Logf("cluster cache hit ratio %.2f (%v of %v)", hits/received, hits, received)

	// Stop node 2: nodes 0 and 1 keep answering, evaluating its share.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	nodes[2].Shutdown(ctx)
	cancel()
	for _, n := range nodes[:2] {
		// Other questions than before, so they are not all cached.
		var more []clusterCheck
		for _, q := range qs {
			more = append(more, clusterCheck{q.doc, "u" + strings.TrimPrefix(q.user, "u") + "0"})
		}
		got := checkAll(t, dialTest(t, n), more)
		lone := checkAll(t, dialTest(t, alone), more)
		for i := range more {
			if got[i] != lone[i] {
				t.Errorf("with a node down: doc:%s view user:%s = %v, %v alone", more[i].doc, more[i].user, got[i], lone[i])
			}
		}
		down := addrs[2]
		if f := counter(t, n, "pemba_dispatch_fallbacks_total", "peer="+down); f == 0 {
			t.Errorf("no fallback for the stopped node")
		}
	}
}

// TestDispatchServiceAuth: the internal API takes the cluster token and
// nothing else, and a server without peers does not serve it.
func TestDispatchServiceAuth(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	randomGraph(t, engine, mrand.New(mrand.NewPCG(1, 2)))
	addrs := freeAddrs(t, 2)
	node := newClusterServer(t, engine, addrs[0], addrs)
	alone := newClusterServer(t, engine, "127.0.0.1:0", nil)
	head, err := engine.HeadRevision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := func() *dpb.DispatchCheckRequest {
		return &dpb.DispatchCheckRequest{InstanceId: "test", Revision: uint64(head), ResourceType: "doc", Relation: "view", ResourceIds: []string{"d1"},
			SubjectType: "user", SubjectId: "u1", NowUnixNanos: time.Now().UnixNano(), Seq: 1, Depth: 1}
	}
	call := func(srv *Server, tok string, req *dpb.DispatchCheckRequest) error {
		cc, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		var opts []grpc.CallOption
		if tok != "" {
			opts = append(opts, grpc.PerRPCCredentials(token(tok)))
		}
		_, err = dpb.NewDispatchServiceClient(cc).DispatchCheck(context.Background(), req, opts...)
		return err
	}
	tooMany := good()
	tooMany.ResourceIds = make([]string, 1001)
	for i := range tooMany.ResourceIds {
		tooMany.ResourceIds[i] = fmt.Sprint(i)
	}
	deep, dup, future, skewed, unknown := good(), good(), good(), good(), good()
	deep.Depth = 51
	dup.ResourceIds = []string{"d1", "d1"}
	future.Revision = uint64(head) + 1000
	skewed.NowUnixNanos = time.Now().Add(-2 * time.Hour).UnixNano()
	unknown.Relation = "edit"
	foreign := good()
	foreign.InstanceId = "another"
	for _, tc := range []struct {
		name string
		srv  *Server
		tok  string
		req  *dpb.DispatchCheckRequest
		want codes.Code
	}{
		{"cluster token", node, testClusterToken, good(), codes.OK},
		{"no token", node, "", good(), codes.Unauthenticated},
		{"user token", node, testSecret, good(), codes.Unauthenticated},
		{"not clustered", alone, testClusterToken, good(), codes.Unimplemented},
		{"too many IDs", node, testClusterToken, tooMany, codes.InvalidArgument},
		{"too deep", node, testClusterToken, deep, codes.InvalidArgument},
		{"duplicate ID", node, testClusterToken, dup, codes.InvalidArgument},
		{"future revision", node, testClusterToken, future, codes.FailedPrecondition},
		{"clock skew", node, testClusterToken, skewed, codes.InvalidArgument},
		{"unknown relation", node, testClusterToken, unknown, codes.InvalidArgument},
		{"another datastore", node, testClusterToken, foreign, codes.PermissionDenied},
	} {
		if got := status.Code(call(tc.srv, tc.tok, tc.req)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// The cluster token is no bearer token for the public API.
	cc, err := grpc.NewClient(node.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(token(testClusterToken)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = pb.NewSchemaServiceClient(cc).ReadSchema(context.Background(), &pb.ReadSchemaRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("public API with the cluster token: %v, want Unauthenticated", err)
	}
}

func TestClusterConfig(t *testing.T) {
	base := func() Config {
		return Config{Engine: nil, GRPCAddr: "127.0.0.1:0", Tokens: []Token{{Name: "a", Secret: testSecret}}}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no token", func(c *Config) { c.Peers = []string{"a:1"} }, "needs --cluster-token"},
		{"short token", func(c *Config) { c.Peers, c.ClusterToken = []string{"a:1"}, "short" }, "at least 16"},
		{"token without peers", func(c *Config) { c.ClusterToken = testClusterToken }, "needs --peers"},
		{"bearer token reused", func(c *Config) {
			c.Peers, c.ClusterToken = []string{"a:1"}, testSecret+"-padding"
			c.Tokens[0].Secret = c.ClusterToken
		}, "equals bearer token"},
		{"bad peer", func(c *Config) { c.Peers, c.ClusterToken = []string{"nohostport"}, testClusterToken }, `entry "nohostport"`},
		{"bad dns peer", func(c *Config) { c.Peers, c.ClusterToken = []string{"dns:///name"}, testClusterToken }, `dns:///name`},
	} {
		cfg := base()
		tc.edit(&cfg)
		err := checkCluster(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestClusterMembers: dns:/// entries become every address the name
// resolves to, and the server finds itself by its listener.
func TestClusterMembers(t *testing.T) {
	cfg := Config{Peers: []string{"dns:///localhost:5555", "192.0.2.9:5555"}, ClusterToken: testClusterToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c, err := newCluster(cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.listen = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	c.resolve(context.Background())
	ring, self := c.dispatch.Members()
	members := ring.Members()
	if !slices.Contains(members, "127.0.0.1:5555") || !slices.Contains(members, "192.0.2.9:5555") {
		t.Errorf("members %v", members)
	}
	if self != "127.0.0.1:5555" {
		t.Errorf("self %q, want 127.0.0.1:5555", self)
	}
	// A listener on every interface is any local address on its port.
	c.listen = &net.TCPAddr{IP: net.IPv4zero, Port: 5555}
	if !c.isSelf(context.Background(), "127.0.0.1:5555") || c.isSelf(context.Background(), "192.0.2.9:5555") || c.isSelf(context.Background(), "127.0.0.1:5556") {
		t.Errorf("isSelf wrong for a wildcard listener")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pemba test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestClusterTLS: servers with a certificate dispatch to each other over
// TLS, trusting their own certificate.
func TestClusterTLS(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	randomGraph(t, engine, mrand.New(mrand.NewPCG(3, 4)))
	cert, key := selfSigned(t, t.TempDir())
	addrs := freeAddrs(t, 2)
	nodes := make([]*Server, 2)
	for i, a := range addrs {
		nodes[i] = newClusterServer(t, engine, a, addrs, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = cert, key })
	}
	pool := x509.NewCertPool()
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(certPEM)
	cc, err := grpc.NewClient(nodes[0].Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})),
		grpc.WithPerRPCCredentials(token(testSecret)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var qs []clusterCheck
	for d := range 40 {
		qs = append(qs, clusterCheck{fmt.Sprint("d", d), "u1"})
	}
	checkAll(t, cc, qs)
	if sent := counter(t, nodes[0], "pemba_dispatch_sent_total"); sent == 0 {
		t.Error("nothing dispatched")
	}
	if f := counter(t, nodes[0], "pemba_dispatch_fallbacks_total"); f != 0 {
		t.Errorf("%v fallbacks over TLS", f)
	}
}
