package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/check/dispatch"
)

// dnsPrefix marks a peer entry re-resolved periodically: every address
// the name resolves to is a member.
const dnsPrefix = "dns:///"

// Cluster defaults and bounds.
const (
	// defaultPeerRefresh is how often dns:/// peers are resolved again.
	defaultPeerRefresh = 30 * time.Second
	// minClusterToken is the shortest cluster token accepted.
	minClusterToken = 16
	// maxPeers bounds the peer entries of the configuration.
	maxPeers = 256
	// maxReceivedDispatches bounds the dispatches a server evaluates at
	// once for its peers; further ones wait (until their deadline).
	maxReceivedDispatches = 64
	// maxDispatchSkew bounds how far a dispatched problem's instant may
	// lie from the receiver's clock.
	maxDispatchSkew = time.Hour
)

// dispatchServicePrefix is the method prefix of the internal
// DispatchService, which accepts the cluster token only.
const dispatchServicePrefix = "/pemba.dispatch.v1.DispatchService/"

// checkCluster validates the cluster part of cfg: a token with peers,
// distinct from every bearer token, and well-formed peer entries.
func checkCluster(cfg Config) error {
	if len(cfg.Peers) == 0 {
		if cfg.ClusterToken != "" {
			return errors.New("--cluster-token needs --peers")
		}
		return nil
	}
	if len(cfg.Peers) > maxPeers {
		return fmt.Errorf("--peers: %d entries, more than the limit of %d", len(cfg.Peers), maxPeers)
	}
	if len(cfg.ClusterToken) < minClusterToken {
		return fmt.Errorf("--peers needs --cluster-token (PEMBA_CLUSTER_TOKEN) of at least %d characters: servers authenticate each other with it", minClusterToken)
	}
	for _, t := range cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Secret), []byte(cfg.ClusterToken)) == 1 {
			return fmt.Errorf("--cluster-token equals bearer token %q: use a separate secret, so clients cannot call the internal API", t.Name)
		}
	}
	for _, p := range cfg.Peers {
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(p, dnsPrefix)); err != nil {
			return fmt.Errorf("--peers entry %q: want host:port or dns:///name:port", p)
		}
	}
	return nil
}

// cluster is this server's membership of a cluster: it resolves the
// peers, keeps a connection to each, sends dispatches (it is the
// dispatch.Cluster's Transport and Observer) and counts them.
type cluster struct {
	dispatch *dispatch.Cluster
	entries  []string // Config.Peers
	instance string   // Config.InstanceID: peers must serve the same datastore
	refresh  time.Duration
	token    string
	digest   [sha256.Size]byte // of token, compared in constant time
	creds    credentials.TransportCredentials
	log      *slog.Logger
	// listen is this server's gRPC listener address, to find itself
	// among the members.
	listen net.Addr
	// received bounds concurrent received dispatches (a semaphore).
	received chan struct{}
	// snapshots holds the snapshots of received dispatches.
	snapshots snapshots

	mu      sync.Mutex                  // guards conns and members
	conns   map[string]*grpc.ClientConn // key: member address
	members []string                    // the last resolved membership
	self    string

	sent      *prometheus.CounterVec // peer
	fallbacks *prometheus.CounterVec // peer, reason
	recv      *prometheus.CounterVec // peer
	recvIDs   prometheus.Counter
	recvHits  prometheus.Counter
}

// newCluster returns the cluster of cfg, or nil without peers.
func newCluster(cfg Config, reg *prometheus.Registry) (*cluster, error) {
	if len(cfg.Peers) == 0 {
		return nil, nil
	}
	c := &cluster{
		entries: cfg.Peers, instance: cfg.InstanceID, refresh: cfg.PeerRefresh, token: cfg.ClusterToken,
		digest: sha256.Sum256([]byte(cfg.ClusterToken)), log: cfg.Logger,
		received: make(chan struct{}, maxReceivedDispatches),
		conns:    map[string]*grpc.ClientConn{},
	}
	if c.refresh <= 0 {
		c.refresh = defaultPeerRefresh
	}
	creds, err := peerCredentials(cfg)
	if err != nil {
		return nil, err
	}
	c.creds = creds
	c.dispatch = &dispatch.Cluster{Transport: c, Observer: c, HedgeDelay: cfg.DispatchHedgeDelay, Timeout: cfg.DispatchTimeout}
	c.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pemba_dispatch_sent_total", Help: "Check sub-problems sent to the peer owning them.",
	}, []string{"peer"})
	c.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pemba_dispatch_fallbacks_total", Help: "Check sub-problems a peer owns that were evaluated here instead, by reason (unhealthy, error, slow, deadline).",
	}, []string{"peer", "reason"})
	c.recv = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pemba_dispatch_received_total", Help: "Check sub-problems received from peers, by sender.",
	}, []string{"peer"})
	c.recvIDs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pemba_dispatch_received_resources_total", Help: "Resources of the check sub-problems received from peers.",
	})
	c.recvHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "pemba_dispatch_received_cache_hits_total", Help: "Resources of received sub-problems answered from the result cache (the cluster cache hit ratio is this over pemba_dispatch_received_resources_total).",
	})
	reg.MustRegister(c.sent, c.fallbacks, c.recv, c.recvIDs, c.recvHits)
	return c, nil
}

// peerCredentials are the transport credentials of connections to
// peers: plaintext when this server serves plaintext, else TLS trusting
// the system roots and this server's own certificate (servers of one
// cluster often share one).
func peerCredentials(cfg Config) (credentials.TransportCredentials, error) {
	if cfg.TLSCertFile == "" {
		return insecure.NewCredentials(), nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	for _, der := range cert.Certificate {
		if c, err := x509.ParseCertificate(der); err == nil {
			roots.AddCert(c)
		}
	}
	return credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}), nil
}

// start resolves the members once and then every refresh interval
// until ctx ends; listen is this server's gRPC listener address.
func (c *cluster) start(ctx context.Context, listen net.Addr) {
	c.listen = listen
	c.resolve(ctx)
	go func() {
		t := time.NewTicker(c.refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				c.resolve(ctx)
			}
		}
	}()
}

// resolve computes the members from the peer entries (a dns:/// entry
// that fails to resolve keeps its last addresses), finds this server
// among them, and closes connections to members that left.
func (c *cluster) resolve(ctx context.Context) {
	c.mu.Lock()
	previous := c.members
	c.mu.Unlock()
	var members []string
	for _, e := range c.entries {
		name, ok := strings.CutPrefix(e, dnsPrefix)
		if !ok {
			members = append(members, e)
			continue
		}
		host, port, _ := net.SplitHostPort(name) // checked by checkCluster
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		if err != nil {
			c.log.Warn("resolve cluster peers", "peers", e, "err", err)
			members = append(members, previousOf(previous, port)...)
			continue
		}
		for _, a := range addrs {
			members = append(members, net.JoinHostPort(a, port))
		}
	}
	slices.Sort(members)
	members = slices.Compact(members)
	self := ""
	for _, m := range members {
		if c.isSelf(ctx, m) {
			self = m
			break
		}
	}
	c.mu.Lock()
	changed := !slices.Equal(members, c.members) || self != c.self
	c.members, c.self = members, self
	for addr, conn := range c.conns {
		if !slices.Contains(members, addr) {
			_ = conn.Close()
			delete(c.conns, addr)
		}
	}
	c.mu.Unlock()
	c.dispatch.SetMembers(members, self)
	if changed {
		c.log.Info("cluster members", "members", members, "self", self)
		if self == "" {
			c.log.Warn("this server is not among the cluster's members: it owns no sub-problems and dispatches every one", "listen", c.listen.String())
		}
	}
}

// previousOf returns the previous members on port (a dns:/// entry's
// last resolution, approximately: the members sharing its port).
func previousOf(previous []string, port string) []string {
	var out []string
	for _, m := range previous {
		if _, p, err := net.SplitHostPort(m); err == nil && p == port {
			out = append(out, m)
		}
	}
	return out
}

// isSelf reports whether member addr is this server: the listener's
// port, and a host that is the listener's address or, for a listener on
// every interface, one of this machine's addresses.
func (c *cluster) isSelf(ctx context.Context, addr string) bool {
	tcp, ok := c.listen.(*net.TCPAddr)
	if !ok {
		return addr == c.listen.String()
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != fmt.Sprint(tcp.Port) {
		return false
	}
	ips := []net.IP{net.ParseIP(host)}
	if ips[0] == nil {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		found, err := net.DefaultResolver.LookupIPAddr(lctx, host)
		cancel()
		if err != nil {
			return false
		}
		ips = ips[:0]
		for _, a := range found {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if ip.Equal(tcp.IP) || (tcp.IP.IsUnspecified() && localIP(ip)) {
			return true
		}
	}
	return false
}

// localIP reports whether ip is an address of this machine.
func localIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// conn returns the connection to peer, made on first use.
func (c *cluster) conn(peer string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[peer]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient("passthrough:///"+peer, grpc.WithTransportCredentials(c.creds))
	if err != nil {
		return nil, fmt.Errorf("connect to peer %s: %w", peer, err)
	}
	c.conns[peer] = cc
	return cc, nil
}

// close closes every peer connection.
func (c *cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cc := range c.conns {
		_ = cc.Close()
		delete(c.conns, addr)
	}
}

// authenticate accepts a request carrying the cluster token, compared
// in constant time.
func (c *cluster) authenticate(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("authorization")
	if len(v) == 0 {
		return status.Error(codes.Unauthenticated, "missing cluster token")
	}
	secret, ok := strings.CutPrefix(v[0], "Bearer ")
	got := sha256.Sum256([]byte(secret))
	if !ok || subtle.ConstantTimeCompare(got[:], c.digest[:]) != 1 {
		return status.Error(codes.Unauthenticated, "invalid cluster token")
	}
	return nil
}

// knownPeer returns sender if it is a member, else "unknown" (it labels
// metrics, so it must not take arbitrary values).
func (c *cluster) knownPeer(sender string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Contains(c.members, sender) {
		return sender
	}
	return "unknown"
}

// Sent counts a dispatch (dispatch.Observer).
func (c *cluster) Sent(peer string) { c.sent.WithLabelValues(peer).Inc() }

// Fallback counts a fallback (dispatch.Observer).
func (c *cluster) Fallback(peer string, r dispatch.Reason) {
	c.fallbacks.WithLabelValues(peer, string(r)).Inc()
}
