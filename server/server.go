package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/check/reach"
	"github.com/pembadb/pemba/core"
	dpb "github.com/pembadb/pemba/proto/pemba/dispatch/v1"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/relchanges"
	"github.com/pembadb/pemba/ui"
)

// Limits bound requests and connections. Zero fields take the defaults.
// The first four and AuditPageSize are request limits: the server hands them to core.Limits,
// which every API applies alike.
type Limits struct {
	// MaxWriteRelationships caps the updates of one WriteRelationships
	// (default 1000); ImportRelationships takes more.
	MaxWriteRelationships int
	// MaxBulkCheckItems caps the items of one BulkCheckPermission (default 1000).
	MaxBulkCheckItems int
	// MaxMessageBytes caps a received message (default 4 MiB).
	MaxMessageBytes int
	// DefaultDeadline applies to unary requests that carry none (default 30s).
	DefaultDeadline time.Duration
	// LookupPageSize is LookupResources' result count when the request
	// gives no limit, and its maximum (default 1000).
	LookupPageSize int
	// ImportBatchSize is how many imported relationships one revision
	// holds (default 1000).
	ImportBatchSize int
	// MaxImportTransaction caps the relationships of one SpiceDB
	// ImportBulkRelationships stream, committed in one transaction
	// (default 10,000).
	MaxImportTransaction int
	// MaxImportBuffer bounds the bytes every import stream together holds
	// buffered, not yet committed (default 256 MiB); a relationship past
	// it fails its import with RESOURCE_EXHAUSTED.
	MaxImportBuffer int64
	// StreamIdleTimeout ends a client stream (ImportRelationships) that
	// sends nothing for this long (default 1m).
	StreamIdleTimeout time.Duration
	// AuditPageSize is ReadAudit's event count when the request gives no
	// limit, and its maximum (default 1000).
	AuditPageSize int

	// MaxConnections caps the open connections of each listener (default
	// 4096); further clients wait in the kernel's accept queue.
	MaxConnections int
	// HandshakeTimeout is how long a new connection has to complete its
	// TLS and HTTP/2 handshakes (gRPC) or send its request headers (HTTP)
	// (default 10s).
	HandshakeTimeout time.Duration
	// HTTPReadTimeout is how long an HTTP client has to send a whole
	// request, body included (default 1m). Responses have no deadline:
	// Watch and the other streams last as long as the client wants.
	HTTPReadTimeout time.Duration
}

// Connection lifetimes that are not configurable.
const (
	// httpIdleTimeout closes a keep-alive HTTP connection between requests.
	httpIdleTimeout = 2 * time.Minute
	// grpcIdleTimeout closes a gRPC connection with no call in flight
	// (with GOAWAY: clients reconnect when they next need to).
	grpcIdleTimeout = 5 * time.Minute
	// grpcPingInterval and grpcPingTimeout find dead gRPC clients.
	grpcPingInterval = time.Minute
	grpcPingTimeout  = 20 * time.Second
	// grpcMinClientPing is the most often a client may ping; a client
	// pinging more often is disconnected.
	grpcMinClientPing = 10 * time.Second
)

func (l Limits) withDefaults() Limits {
	if l.MaxWriteRelationships <= 0 {
		l.MaxWriteRelationships = 1000
	}
	if l.MaxBulkCheckItems <= 0 {
		l.MaxBulkCheckItems = 1000
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 4 << 20
	}
	if l.DefaultDeadline <= 0 {
		l.DefaultDeadline = 30 * time.Second
	}
	if l.LookupPageSize <= 0 {
		l.LookupPageSize = 1000
	}
	if l.ImportBatchSize <= 0 {
		l.ImportBatchSize = 1000
	}
	if l.AuditPageSize <= 0 {
		l.AuditPageSize = 1000
	}
	if l.StreamIdleTimeout <= 0 {
		l.StreamIdleTimeout = time.Minute
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = 4096
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = 10 * time.Second
	}
	if l.HTTPReadTimeout <= 0 {
		l.HTTPReadTimeout = time.Minute
	}
	return l
}

// Config configures a Server.
type Config struct {
	// Engine is the datastore. The server does not close it.
	Engine storage.Engine
	// DisableAudit says the engine was opened with its audit log disabled:
	// the AuditService, check provenance and Watch from a time answer
	// FAILED_PRECONDITION instead of reading an empty log.
	DisableAudit bool
	// InstanceID binds zookies to this datastore ("" leaves them unbound).
	InstanceID string
	// Tokens are the accepted bearer tokens.
	Tokens []Token
	// InsecureNoAuth serves without tokens; New refuses it unless every
	// listener is on a loopback address, and refuses it with Tokens.
	InsecureNoAuth bool

	// GRPCAddr and HTTPAddr are listen addresses; HTTPAddr "" disables
	// HTTP/JSON. MetricsAddr "" serves /metrics on the HTTP listener.
	GRPCAddr    string
	HTTPAddr    string
	MetricsAddr string
	// Profiling serves Go's runtime profiles (/debug/pprof/, without
	// the command line) beside /metrics, without authentication; New
	// refuses it unless that listener is on a loopback address. It also
	// turns on the mutex profile for the whole process, sampling one
	// contended lock in MutexProfileFraction.
	Profiling bool
	// TLSCertFile and TLSKeyFile enable TLS on the gRPC and HTTP listeners.
	TLSCertFile string
	TLSKeyFile  string

	// Check configures the query engine (max depth, cache size, ...).
	Check check.Config
	// WarmSetsWait, when positive, has Serve compute the subject sets
	// lookups on many resources share (check.Engine.WarmSets) before the
	// server reports ready, for at most this long; the server answers
	// requests meanwhile, and /readyz says it is starting. They are
	// computed again, in the background and for as long, after each
	// import that committed relationships (warm.go).
	WarmSetsWait time.Duration
	// DisableCacheAcrossRevisions keeps every cached read and subject
	// set to the revision it was computed at. Otherwise the server
	// follows the datastore's change stream (package storage/relchanges)
	// and a result serves later revisions until its relations change, so
	// writes leave the caches of other relations warm.
	DisableCacheAcrossRevisions bool
	// DisableReachIndex turns off the reachability index of nested
	// subject-set relations (package check/reach), which the server
	// otherwise builds at start, keeps current from the change stream and
	// lets the check engine answer nested memberships from.
	DisableReachIndex bool
	// ReachIndexMaxBytes bounds the reachability index's estimated
	// memory (0: no bound); past it the index empties itself and checks
	// walk, and it is rebuilt ten minutes later.
	ReachIndexMaxBytes int64
	// Quantization is how long minimize_latency reuses a head revision
	// (default 5s).
	Quantization time.Duration
	Limits       Limits
	Logger       *slog.Logger

	// SpiceDBHTTPAddr, when set, serves SpiceDB's HTTP/JSON API
	// (authzed.api.v1's gateway paths and JSON bodies, unchanged) on its
	// own listener: its paths (/v1/permissions/check, ...) are also
	// pemba.v1's, with other field names, on HTTPAddr.
	SpiceDBHTTPAddr string
	// WatchCheckpointInterval is how often an authzed.api.v1 Watch that
	// asks for checkpoints gets one (default 1s).
	WatchCheckpointInterval time.Duration

	// Version is the server's version, reported by WhoAmI.
	Version string
	// DisableUI leaves the access explorer (/ui on the HTTP listener)
	// unserved.
	DisableUI bool

	// Peers, when set, makes this server one of a cluster sharing its
	// datastore: the gRPC addresses of every server of the cluster, this
	// one included, as host:port or dns:///name:port (every address the
	// name resolves to, re-resolved every PeerRefresh). Each check
	// sub-problem is evaluated and cached by the server that owns it
	// (see check/dispatch).
	Peers []string
	// ClusterToken authenticates the servers of a cluster to each other
	// (required with Peers, at least 16 characters, distinct from every
	// bearer token).
	ClusterToken string
	// PeerRefresh is how often dns:/// peers are resolved (default 30s).
	PeerRefresh time.Duration
	// DispatchHedgeDelay and DispatchTimeout configure dispatches (see
	// dispatch.Cluster; defaults 100ms and 1s).
	DispatchHedgeDelay time.Duration
	DispatchTimeout    time.Duration
}

// Server serves the Pemba API.
type Server struct {
	cfg     Config
	limits  Limits
	log     *slog.Logger
	engine  storage.Engine
	checker *check.Engine
	// reach is the check engine's reachability index; nil when disabled.
	reach *reach.Index
	// changes records which relations each revision changed
	// (followChanges); nil with DisableCacheAcrossRevisions.
	changes *relchanges.Tracker
	// changesDone is closed when its follower ends.
	changesDone chan struct{}
	// reachDone is closed when the index's follower ends (followReach).
	reachDone chan struct{}
	revs      *core.Revisions
	// requests are the request limits every API applies.
	requests core.Limits
	writer   *core.Writer
	schemas  *core.Schemas
	auth     *authenticator
	metrics  *metrics
	// cluster is nil unless Config.Peers is set.
	cluster *cluster
	health  *health.Server
	// readiness is the last datastore probe's result (readiness.go).
	readiness atomic.Int32

	// warmer runs the warmings of the shared subject sets (warm.go).
	warmer setWarmer

	// stopping is cancelled when Shutdown begins, ending Watch streams
	// so a graceful stop does not wait for them forever.
	stopping context.Context
	stop     context.CancelFunc

	grpc    *grpc.Server
	httpSrv *http.Server
	// spicedbHTTP serves SpiceDB's HTTP/JSON API (Config.SpiceDBHTTPAddr),
	// on spicedbLis.
	spicedbHTTP *http.Server
	spicedbLis  net.Listener
	metricSrv   *http.Server
	listeners   []net.Listener
	inproc      *bufconn.Listener
	gwConn      *grpc.ClientConn
	grpcInner   *grpc.Server
	serveErr    chan error
}

// New validates cfg and builds a server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("server: no datastore")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WatchCheckpointInterval <= 0 {
		cfg.WatchCheckpointInterval = time.Second
	}
	if cfg.Quantization <= 0 {
		cfg.Quantization = 5 * time.Second
	}
	if cfg.GRPCAddr == "" {
		return nil, errors.New("server: no gRPC listen address")
	}
	if err := checkAuth(cfg); err != nil {
		return nil, err
	}
	if err := checkProfiling(cfg); err != nil {
		return nil, err
	}
	if cfg.Profiling {
		goruntime.SetMutexProfileFraction(MutexProfileFraction)
	}
	if err := checkCluster(cfg); err != nil {
		return nil, err
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	s := &Server{
		cfg:      cfg,
		limits:   cfg.Limits.withDefaults(),
		log:      cfg.Logger,
		schemas:  core.NewSchemas(),
		auth:     newAuthenticator(cfg.Tokens, cfg.InsecureNoAuth),
		health:   health.NewServer(),
		serveErr: make(chan error, 4),
	}
	if !cfg.DisableReachIndex {
		s.reach = reach.New(reach.Options{MaxBytes: cfg.ReachIndexMaxBytes})
		cfg.Check.Reach = s.reach
	}
	if !cfg.DisableCacheAcrossRevisions {
		s.changes = &relchanges.Tracker{}
		cfg.Check.Changes = s.changes
	}
	s.metrics = newMetrics(s)
	cl, err := newCluster(cfg, s.metrics.registry)
	if err != nil {
		return nil, err
	}
	if cl != nil {
		s.cluster = cl
		cfg.Check.Cluster = cl.dispatch
	}
	s.checker = check.New(cfg.Check)
	s.engine = instrument(cfg.Engine, s.metrics)
	s.revs = core.NewRevisions(s.engine, core.NewZookies(cfg.InstanceID), cfg.Quantization)
	s.requests = core.Limits{
		MaxWriteRelationships: s.limits.MaxWriteRelationships, MaxBulkCheckItems: s.limits.MaxBulkCheckItems,
		LookupPageSize: s.limits.LookupPageSize, ImportBatchSize: s.limits.ImportBatchSize,
		AuditPageSize: s.limits.AuditPageSize, MaxImportTransaction: s.limits.MaxImportTransaction,
		MaxImportBuffer: s.limits.MaxImportBuffer,
	}.WithDefaults()
	s.writer = core.NewWriter(s.engine, s.revs, s.schemas, s.requests)
	s.writer.OnImported(s.warmAfterImport)
	s.stopping, s.stop = context.WithCancel(context.Background())
	return s, nil
}

// checkAuth refuses configurations that would serve unauthenticated
// requests: no tokens without --insecure-no-auth; --insecure-no-auth on a
// listener off loopback; and --insecure-no-auth together with tokens,
// where a client with a missing or wrong token would be served anyway.
func checkAuth(cfg Config) error {
	if cfg.InsecureNoAuth {
		if len(cfg.Tokens) > 0 {
			return errors.New("--insecure-no-auth cannot be combined with bearer tokens " +
				"(--token, --token-file, PEMBA_SERVE_TOKENS or --dev): a server with tokens must reject requests " +
				"without one; drop --insecure-no-auth, or the tokens")
		}
		for _, addr := range []string{cfg.GRPCAddr, cfg.HTTPAddr, cfg.MetricsAddr, cfg.SpiceDBHTTPAddr} {
			if addr != "" && !isLoopback(addr) {
				return fmt.Errorf("--insecure-no-auth refused: %s is not a loopback address", addr)
			}
		}
		return nil
	}
	if len(cfg.Tokens) == 0 {
		return errors.New("no bearer tokens configured: give --token name=secret (or --token-file); " +
			"--insecure-no-auth serves without authentication, on loopback addresses only")
	}
	names := map[string]bool{}
	for _, t := range cfg.Tokens {
		if names[t.Name] {
			return fmt.Errorf("token name %q given twice", t.Name)
		}
		names[t.Name] = true
	}
	return nil
}

// MutexProfileFraction is the rate of the mutex profile with Profiling
// (see runtime.SetMutexProfileFraction): one contention event in five
// is recorded, which costs nothing on an uncontended lock.
const MutexProfileFraction = 5

// checkProfiling refuses --pprof unless the listener serving the
// profiles is on loopback: they are unauthenticated, a CPU profile or
// trace costs the server real work, and heap profiles show request data.
func checkProfiling(cfg Config) error {
	if !cfg.Profiling {
		return nil
	}
	addr, flag := cfg.MetricsAddr, "--metrics-addr"
	if addr == "" {
		addr, flag = cfg.HTTPAddr, "--http-addr"
	}
	if addr == "" {
		return errors.New("--pprof needs --http-addr or --metrics-addr")
	}
	if !isLoopback(addr) {
		return fmt.Errorf("--pprof refused: profiles are served without authentication, and %s %s is not a loopback address "+
			"(serve them on a loopback --metrics-addr and reach it through an SSH tunnel or port forward)", flag, addr)
	}
	return nil
}

// isLoopback reports whether a listen address is on a loopback interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Registry returns the server's Prometheus registry.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// Serve opens the listeners and serves in the background. It returns once
// every listener is open; Wait reports a listener's failure.
func (s *Server) Serve() error {
	var tlsCfg *tls.Config
	var extra []grpc.ServerOption
	if s.cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("load TLS certificate: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		extra = append(extra, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s.grpc = s.newGRPCServer(extra...)

	lis, err := s.listen("gRPC", s.cfg.GRPCAddr)
	if err != nil {
		return err
	}
	go s.run("gRPC", func() error { return s.grpc.Serve(lis) })
	if s.cluster != nil {
		s.cluster.start(s.stopping, lis.Addr())
	}

	if s.cfg.HTTPAddr != "" {
		if err := s.serveHTTP(tlsCfg); err != nil {
			s.closeListeners()
			return err
		}
	}
	if s.cfg.MetricsAddr != "" && s.cfg.MetricsAddr != s.cfg.HTTPAddr {
		mlis, err := s.listen("metrics", s.cfg.MetricsAddr)
		if err != nil {
			s.closeListeners()
			return err
		}
		mux := http.NewServeMux()
		s.handleObservability(mux)
		s.metricSrv = s.newHTTPServer(mux, nil)
		go s.run("metrics", func() error { return s.metricSrv.Serve(mlis) })
	}
	if s.cfg.SpiceDBHTTPAddr != "" {
		if err := s.serveSpiceDBHTTP(tlsCfg); err != nil {
			s.closeListeners()
			return err
		}
	}
	if s.cfg.WarmSetsWait > 0 {
		for _, name := range servingNames {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
		}
		go func() {
			s.warm("start")
			s.setReady(s.probe(s.stopping))
			s.probePeriodically()
		}()
	} else {
		s.setReady(s.probe(s.stopping))
		go s.probePeriodically()
	}
	if s.reach != nil {
		s.followReach()
	}
	if s.changes != nil {
		s.followChanges()
	}
	s.log.Info("serving", "grpc", s.listeners[0].Addr().String(), "http", s.cfg.HTTPAddr, "tls", tlsCfg != nil)
	return nil
}

// listen opens a TCP listener that holds at most MaxConnections
// connections at once, so a flood of connections to one listener cannot
// take the descriptors the others and the datastore need.
func (s *Server) listen(name, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s on %s: %w", name, addr, err)
	}
	lis = netutil.LimitListener(lis, s.limits.MaxConnections)
	s.listeners = append(s.listeners, lis)
	return lis, nil
}

// newHTTPServer is an HTTP server with the connection timeouts. It has
// no WriteTimeout: a Watch or export streams its response for as long as
// the client reads it.
func (s *Server) newHTTPServer(h http.Handler, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: s.limits.HandshakeTimeout,
		ReadTimeout:       s.limits.HTTPReadTimeout,
		IdleTimeout:       httpIdleTimeout,
	}
}

// newGRPCServer builds a gRPC server with every service and interceptor.
func (s *Server) newGRPCServer(extra ...grpc.ServerOption) *grpc.Server {
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(s.limits.MaxMessageBytes),
		// A connection that has not finished its handshakes (a client
		// that opens TCP and sends nothing) is closed after this.
		grpc.ConnectionTimeout(s.limits.HandshakeTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: grpcIdleTimeout,
			Time:              grpcPingInterval,
			Timeout:           grpcPingTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             grpcMinClientPing,
			PermitWithoutStream: true,
		}),
		// Long-lived workers run the requests: a check recurses deeply, and
		// a fresh goroutine per request would grow (copy) its stack on
		// every call; a worker keeps the stack it grew.
		grpc.NumStreamWorkers(uint32(4 * goruntime.GOMAXPROCS(0))),
		grpc.ChainUnaryInterceptor(s.metrics.unary, s.logUnary, s.authUnary, s.deadline, s.mapErrorsUnary),
		grpc.ChainStreamInterceptor(s.metrics.stream, s.logStream, s.authStream, s.mapErrorsStream),
	}, extra...)
	g := grpc.NewServer(opts...)
	pb.RegisterSchemaServiceServer(g, &schemaService{s: s})
	pb.RegisterRelationshipServiceServer(g, &relationshipService{s: s})
	pb.RegisterPermissionServiceServer(g, &permissionService{s: s})
	pb.RegisterWatchServiceServer(g, &watchService{s: s})
	pb.RegisterAuditServiceServer(g, &auditService{s: s})
	pb.RegisterAccessServiceServer(g, &accessService{s: s})
	pb.RegisterExplorerServiceServer(g, &explorerService{s: s})
	s.registerAuthzed(g)
	if s.cluster != nil {
		dpb.RegisterDispatchServiceServer(g, &dispatchService{s: s})
	}
	healthpb.RegisterHealthServer(g, s.health)
	return g
}

// serveHTTP serves the grpc-gateway, its OpenAPI document, health
// endpoints and (unless moved) /metrics. The gateway reaches the gRPC
// server over an in-process connection, so every HTTP request passes the
// same interceptors (authentication, limits, metrics) as a gRPC one.
func (s *Server) serveHTTP(tlsCfg *tls.Config) error {
	conn, err := s.inprocessConn()
	if err != nil {
		return err
	}
	gw := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: false},
	}), runtime.WithErrorHandler(gatewayErrors), runtime.WithRoutingErrorHandler(routingErrors))
	ctx := context.Background()
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		pb.RegisterSchemaServiceHandler, pb.RegisterRelationshipServiceHandler,
		pb.RegisterPermissionServiceHandler, pb.RegisterWatchServiceHandler, pb.RegisterAuditServiceHandler,
		pb.RegisterAccessServiceHandler, pb.RegisterExplorerServiceHandler,
	} {
		if err := register(ctx, gw, conn); err != nil {
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	// Registered last, so it replaces the generated handler of the path.
	if err := gw.HandlePath(http.MethodPost, importPath, s.httpImport(gw)); err != nil {
		return fmt.Errorf("register gateway: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.guardGateway(gw))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc(http.MethodGet+" "+openAPIPath, serveOpenAPI)
	if !s.cfg.DisableUI {
		explorer := ui.Handler()
		mux.Handle(ui.Prefix, explorer)
		mux.Handle(strings.TrimSuffix(ui.Prefix, "/"), explorer)
	}
	if s.cfg.MetricsAddr == "" || s.cfg.MetricsAddr == s.cfg.HTTPAddr {
		s.handleObservability(mux)
	}
	lis, err := s.listen("HTTP", s.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	s.httpSrv = s.newHTTPServer(mux, tlsCfg)
	go s.run("HTTP", func() error {
		if tlsCfg != nil {
			return s.httpSrv.ServeTLS(lis, "", "")
		}
		return s.httpSrv.Serve(lis)
	})
	return nil
}

// inprocessConn returns the connection HTTP gateways reach the gRPC
// services through: a plaintext in-process gRPC server with the same
// services and interceptors and no network exposure, started on first use.
func (s *Server) inprocessConn() (*grpc.ClientConn, error) {
	if s.gwConn != nil {
		return s.gwConn, nil
	}
	inner := s.newGRPCServer()
	s.inproc = bufconn.Listen(1 << 20)
	innerLis := s.inproc
	go s.run("in-process gRPC", func() error { return inner.Serve(innerLis) })
	s.grpcInner = inner
	conn, err := grpc.NewClient("passthrough:///pemba-inprocess",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("connect gateway: %w", err)
	}
	s.gwConn = conn
	return conn, nil
}

// handleObservability mounts /metrics and, when enabled, the profiles.
func (s *Server) handleObservability(mux *http.ServeMux) {
	mux.Handle("/metrics", s.metrics.handler())
	if s.cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		// No /debug/pprof/cmdline: the command line holds secrets
		// (--token, --datastore-url). pprof.Index answers it 404.
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

func (s *Server) run(name string, serve func() error) {
	err := serve()
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
		s.serveErr <- fmt.Errorf("%s listener: %w", name, err)
	}
}

// Addr returns the gRPC listener's address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.listeners[0].Addr() }

// HTTPAddr returns the HTTP listener's address, or nil.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpSrv == nil || len(s.listeners) < 2 {
		return nil
	}
	return s.listeners[1].Addr()
}

// Wait returns the first listener failure, or nil once ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case err := <-s.serveErr:
		return err
	case <-ctx.Done():
		return nil
	}
}

func (s *Server) closeListeners() {
	for _, l := range s.listeners {
		_ = l.Close()
	}
}

// Shutdown stops accepting requests, ends Watch streams, and waits (until
// ctx ends) for in-flight requests to finish; then it stops hard.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
	s.stop()
	s.waitWarming(ctx)
	s.waitReach(ctx)
	s.waitChanges(ctx)
	if s.httpSrv != nil {
		_ = s.httpSrv.Shutdown(ctx)
	}
	if s.metricSrv != nil {
		_ = s.metricSrv.Shutdown(ctx)
	}
	if s.spicedbHTTP != nil {
		_ = s.spicedbHTTP.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		if s.grpcInner != nil {
			s.grpcInner.GracefulStop()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		if s.grpcInner != nil {
			s.grpcInner.Stop()
		}
		<-done
	}
	if s.gwConn != nil {
		_ = s.gwConn.Close()
	}
	if s.cluster != nil {
		s.cluster.close()
	}
}
