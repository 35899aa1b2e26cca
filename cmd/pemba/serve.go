package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/server"
)

// serveOptions are the flags of `pemba serve`; each is also read from a
// PEMBA_* environment variable (see envName).
type serveOptions struct {
	datastore    string
	datastoreURL string
	dataDir      string
	autoMigrate  bool
	// datastoreTimeout bounds opening the datastore (connecting,
	// migrating, replaying the log).
	datastoreTimeout time.Duration

	grpcAddr    string
	httpAddr    string
	metricsAddr string
	tlsCert     string
	tlsKey      string

	tokens         []string
	tokenFile      string
	insecureNoAuth bool
	dev            bool

	cacheEntries     int
	cacheBytes       int64
	chunkSize        int
	concurrency      int
	blockCacheBytes  int64
	readCacheBytes   int64
	setCacheBytes    int64
	warmSetsWait     time.Duration
	reachIndex       bool
	cacheAcross      bool
	reachIndexBytes  int64
	profiling        bool
	quantization     time.Duration
	maxDepth         int
	maxExpandNodes   int
	maxAccessObjects int
	gcWindow         time.Duration
	gcInterval       time.Duration
	audit            bool
	ui               bool
	spicedbHTTPAddr  string
	auditRetention   time.Duration

	maxWrite        int
	maxImportTx     int
	maxImportBuffer int64
	maxBulkCheck    int
	maxMessageBytes int
	defaultDeadline time.Duration
	lookupPageSize  int
	streamIdle      time.Duration
	shutdownTimeout time.Duration

	maxConnections   int
	handshakeTimeout time.Duration
	httpReadTimeout  time.Duration

	logLevel  string
	logFormat string

	peers         []string
	clusterToken  string
	peerRefresh   time.Duration
	hedgeDelay    time.Duration
	dispatchLimit time.Duration
}

// envNames overrides the environment variable of a flag whose default
// name would collide with a client variable.
var envNames = map[string]string{"token": "PEMBA_SERVE_TOKENS"}

// envName is the environment variable a serve flag is read from:
// PEMBA_ + the flag name in upper case with - as _.
func envName(flag string) string {
	if n, ok := envNames[flag]; ok {
		return n
	}
	return "PEMBA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", envName(f.Name), e)
			}
		}
	})
	return err
}

func init() {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Pemba server (gRPC and HTTP/JSON)",
		Long: `serve runs the authorization database: the pemba.v1 gRPC API and SpiceDB's
authzed.api.v1 on --grpc-addr; pemba.v1's HTTP/JSON mapping, the access
explorer (/ui/), health checks (/healthz, /readyz) and Prometheus metrics
(/metrics) on --http-addr.

Every flag can also be set with an environment variable: PEMBA_ and the
flag name in upper case, dashes as underscores (--grpc-addr is
PEMBA_GRPC_ADDR); --token is PEMBA_SERVE_TOKENS (comma-separated).

Requests authenticate with a bearer token (--token name=secret, repeatable,
or --token-file with one name=secret per line); the token's name is
recorded as the actor of every write. --dev runs a local development
server with a generated token it prints.

Every committed write is recorded in the audit log with its actor, reason
and labels, in the same transaction as the write, chained by hash (read it
with "pemba audit", check it with "pemba audit verify"). Garbage
collection (--gc-window) never removes audit entries; --audit-retention
drops the ones older than it, and --audit=false records none.

Several servers sharing a PostgreSQL or CockroachDB database form a cluster
with --peers (every server's gRPC address, this one included) and
--cluster-token: each check sub-problem is evaluated and cached by the
server owning it, and a peer that is down or slow only makes the others
evaluate its share themselves.`,
		Example: `  pemba serve --dev
  pemba serve --token ci=$(openssl rand -hex 16) --data-dir /var/lib/pemba
  pemba serve --datastore postgres --datastore-url postgres://pemba@db/pemba --token-file /etc/pemba/tokens
  PEMBA_CLUSTER_TOKEN=… pemba serve --datastore postgres --datastore-url … --peers pemba-0:50051,pemba-1:50051,pemba-2:50051`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return &exitCodeError{code: exitError, err: err}
			}
			if err := serve(cmd, o); err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("serve: %w", err)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.datastore, "datastore", "embedded", "datastore: embedded (Pebble on disk), memory, postgres or cockroachdb")
	f.StringVar(&o.datastoreURL, "datastore-url", "", "connection URL for postgres or cockroachdb")
	f.StringVar(&o.dataDir, "data-dir", "./pemba-data", "directory of the embedded datastore")
	f.BoolVar(&o.autoMigrate, "auto-migrate", false, "apply pending SQL migrations at start (otherwise run `pemba migrate` first)")
	f.DurationVar(&o.datastoreTimeout, "datastore-timeout", time.Minute, "how long opening the datastore at start (connecting, migrating, replaying its log) may take")
	f.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:50051", "gRPC listen address")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", `HTTP/JSON, health and metrics listen address ("" disables HTTP)`)
	f.StringVar(&o.spicedbHTTPAddr, "spicedb-http-addr", "", `serve SpiceDB's HTTP/JSON API (its paths and bodies, unchanged) on this address ("" disables it)`)
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics on this address instead of the HTTP listener")
	f.BoolVar(&o.profiling, "pprof", false, "serve Go runtime profiles at /debug/pprof/ beside /metrics, without authentication (refused unless that listener is on loopback)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM) for the gRPC and HTTP listeners")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	f.StringArrayVar(&o.tokens, "token", nil, "bearer token as name=secret (repeatable)")
	f.StringVar(&o.tokenFile, "token-file", "", "file with one name=secret token per line (# comments)")
	f.BoolVar(&o.insecureNoAuth, "insecure-no-auth", false, "serve without authentication: loopback addresses only, and never together with tokens")
	f.BoolVar(&o.dev, "dev", false, "local development server: generated token (kept in the data directory), loopback only")
	f.IntVar(&o.cacheEntries, "cache-entries", 100000, "check result cache entries (negative disables the cache)")
	f.Int64Var(&o.cacheBytes, "cache-bytes", 0, "bound the check result cache by estimated memory instead of --cache-entries (0: use --cache-entries)")
	f.Int64Var(&o.readCacheBytes, "read-cache-bytes", 64<<20, "memory for small relationship query results shared by checks at the same revision (negative disables)")
	f.Int64Var(&o.setCacheBytes, "set-cache-bytes", check.DefaultSetCacheBytes, "memory for the subject sets lookups compute whole and share, such as everyone cleared for a tier; one set may take a quarter (negative disables)")
	f.DurationVar(&o.warmSetsWait, "warm-sets-wait", 30*time.Second, "at start, compute the subject sets lookups on many resources share (everyone cleared for each tier) before reporting ready, for at most this long, and again in the background after each import (0: report ready at once and compute them as lookups ask)")
	f.BoolVar(&o.cacheAcross, "cache-across-revisions", true, "follow the datastore's change stream so a cached read or subject set serves later revisions until its relations change: writes then leave the caches of other relations warm (false: each result serves only the revision it was read at)")
	f.BoolVar(&o.reachIndex, "reach-index", true, "keep an in-memory index of nested group memberships (relations such as 'member: user | group#member') and of folder trees' parent relations ('view = viewer + parent->view'), so a nested-group check is one lookup and a folder chain one batch; its memory is the metric pemba_reach_index_bytes")
	f.Int64Var(&o.reachIndexBytes, "reach-index-max-bytes", 2<<30, "bound the reach index's estimated memory; past it the index empties itself, checks walk nested groups, and it is rebuilt ten minutes later (0: no bound)")
	f.IntVar(&o.chunkSize, "dispatch-chunk-size", 100, "resource IDs one storage query of a check covers")
	f.IntVar(&o.concurrency, "dispatch-concurrency", 4, "goroutines one BulkCheck or lookup request may use")
	f.Int64Var(&o.blockCacheBytes, "block-cache-bytes", 256<<20, "embedded datastore block cache size in bytes (Pebble's memtables count against it)")
	f.DurationVar(&o.quantization, "quantization", 5*time.Second, "how long minimize_latency reads reuse a head revision")
	f.IntVar(&o.maxDepth, "max-depth", 50, "maximum nested dispatches of one check")
	f.IntVar(&o.maxExpandNodes, "max-expand-nodes", 50000, "maximum nodes of one ExpandPermission tree (larger trees are refused; use LookupSubjects)")
	f.IntVar(&o.maxAccessObjects, "max-access-objects", 500000, "maximum objects an access analysis holds for a permission it must answer whole (who: a wildcard grants it; what: a type that reaches itself); larger ones are refused")
	f.DurationVar(&o.gcWindow, "gc-window", 24*time.Hour, "how long old revisions stay readable (zookies older than this are refused)")
	f.DurationVar(&o.gcInterval, "gc-interval", time.Minute, "how often the embedded datastore drops history older than --gc-window")
	f.BoolVar(&o.ui, "ui", true, "serve the access explorer at /ui on the HTTP listener")
	f.BoolVar(&o.audit, "audit", true, "record every write in the audit log (false stores none: for benchmarks; audit reads, check provenance and watch --since TIME are then refused)")
	f.DurationVar(&o.auditRetention, "audit-retention", 0, "drop audit log entries older than this (0: keep them forever); garbage collection never removes them otherwise")
	f.IntVar(&o.maxWrite, "max-write-relationships", 1000, "maximum updates in one WriteRelationships")
	f.IntVar(&o.maxImportTx, "max-import-transaction", core.DefaultMaxImportTransaction, "maximum relationships of one SpiceDB ImportBulkRelationships stream, which commits in one transaction")
	f.Int64Var(&o.maxImportBuffer, "max-import-buffer", core.DefaultMaxImportBuffer, "maximum bytes every import stream together holds buffered before committing; a relationship past it fails its import with RESOURCE_EXHAUSTED")
	f.IntVar(&o.maxBulkCheck, "max-bulk-check-items", 1000, "maximum items in one BulkCheckPermission")
	f.IntVar(&o.maxMessageBytes, "max-message-bytes", 4<<20, "maximum size of a received message")
	f.DurationVar(&o.defaultDeadline, "default-deadline", 30*time.Second, "deadline of requests that carry none")
	f.IntVar(&o.lookupPageSize, "lookup-page-size", 1000, "LookupResources results per call (and the maximum a client may ask)")
	f.DurationVar(&o.streamIdle, "stream-idle-timeout", time.Minute, "end an import stream whose client sends nothing for this long")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	f.IntVar(&o.maxConnections, "max-connections", 0, fmt.Sprintf("maximum open connections per listener "+
		"(0: %d, or fewer when the open-file limit minus %d descriptors kept for the datastore is smaller)", defaultMaxConnections, reservedDescriptors))
	f.DurationVar(&o.handshakeTimeout, "handshake-timeout", 10*time.Second, "how long a new connection has to finish its TLS/HTTP/2 handshake (gRPC) or send its request headers (HTTP)")
	f.DurationVar(&o.httpReadTimeout, "http-read-timeout", time.Minute, "how long an HTTP client has to send a whole request, body included (responses, such as Watch streams, have no deadline)")
	f.StringSliceVar(&o.peers, "peers", nil, "gRPC addresses of every server sharing this datastore, this one included (comma-separated host:port, or dns:///name:port for every address a name resolves to): each check sub-problem is evaluated and cached by the server owning it")
	f.StringVar(&o.clusterToken, "cluster-token", "", "secret the servers of --peers authenticate each other with (required with --peers; prefer PEMBA_CLUSTER_TOKEN, which ps does not show)")
	f.DurationVar(&o.peerRefresh, "peer-refresh", 30*time.Second, "how often dns:/// peers are resolved again")
	f.DurationVar(&o.hedgeDelay, "dispatch-hedge-delay", 100*time.Millisecond, "how long a check waits for a peer's answer before evaluating the sub-problem itself")
	f.DurationVar(&o.dispatchLimit, "dispatch-timeout", time.Second, "longest one sub-problem sent to a peer may take (at most half the request's remaining deadline)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	rootCmd.AddCommand(cmd)
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// readTokenFile reads name=secret lines; blank lines and # comments are skipped.
func readTokenFile(path string) ([]server.Token, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	defer file.Close()
	var out []server.Token
	sc := bufio.NewScanner(file)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		t, err := server.ParseToken(text)
		if err != nil {
			return nil, fmt.Errorf("--token-file %s:%d: %w", path, line, err)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

// devToken returns the development token kept in dir (created on first
// use), or a fresh one when dir is "" (memory datastore).
func devToken(dir string) (string, error) {
	newSecret := func() string {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return "pemba-dev-" + hex.EncodeToString(b)
	}
	if dir == "" {
		return newSecret(), nil
	}
	path := filepath.Join(dir, "dev-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 8 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	secret := newSecret()
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return secret, nil
}

func serve(cmd *cobra.Command, o serveOptions) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	var tokens []server.Token
	for _, t := range o.tokens {
		tok, err := server.ParseToken(t)
		if err != nil {
			return fmt.Errorf("--token: %w", err)
		}
		tokens = append(tokens, tok)
	}
	if o.tokenFile != "" {
		more, err := readTokenFile(o.tokenFile)
		if err != nil {
			return err
		}
		tokens = append(tokens, more...)
	}
	var devSecret string
	if o.dev {
		for _, addr := range []string{o.grpcAddr, o.httpAddr, o.metricsAddr, o.spicedbHTTPAddr} {
			if addr != "" && !loopbackAddr(addr) {
				return fmt.Errorf("--dev serves on loopback addresses only; %s is not one", addr)
			}
		}
		dir := o.dataDir
		if o.datastore != "embedded" {
			dir = ""
		}
		if devSecret, err = devToken(dir); err != nil {
			return fmt.Errorf("dev token: %w", err)
		}
		tokens = append(tokens, server.Token{Name: "dev", Secret: devSecret})
	}

	if len(o.peers) > 0 && o.datastore != "postgres" && o.datastore != "cockroachdb" {
		return fmt.Errorf("--peers needs a datastore the servers share (postgres or cockroachdb): with --datastore %s each server holds data of its own", o.datastore)
	}
	if o.auditRetention < 0 {
		return fmt.Errorf("--audit-retention %v: want a positive duration, or 0 to keep the log forever", o.auditRetention)
	}
	maxConns, err := listenerConnectionLimit(o, log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	store, err := openDatastore(ctx, o, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.engine.Close(); err != nil {
			log.Error("close datastore", "err", err)
		} else {
			log.Info("datastore closed")
		}
	}()

	srv, err := server.New(server.Config{
		Engine:                      store.engine,
		DisableAudit:                !o.audit,
		InstanceID:                  store.instanceID,
		Tokens:                      tokens,
		InsecureNoAuth:              o.insecureNoAuth,
		GRPCAddr:                    o.grpcAddr,
		HTTPAddr:                    o.httpAddr,
		MetricsAddr:                 o.metricsAddr,
		Profiling:                   o.profiling,
		TLSCertFile:                 o.tlsCert,
		TLSKeyFile:                  o.tlsKey,
		Check:                       checkConfig(o),
		DisableReachIndex:           !o.reachIndex,
		DisableCacheAcrossRevisions: !o.cacheAcross,
		ReachIndexMaxBytes:          o.reachIndexBytes,
		Quantization:                o.quantization,
		WarmSetsWait:                o.warmSetsWait,
		Limits: server.Limits{
			MaxWriteRelationships: o.maxWrite,
			MaxImportTransaction:  o.maxImportTx,
			MaxImportBuffer:       o.maxImportBuffer,
			MaxBulkCheckItems:     o.maxBulkCheck,
			MaxMessageBytes:       o.maxMessageBytes,
			DefaultDeadline:       o.defaultDeadline,
			LookupPageSize:        o.lookupPageSize,
			StreamIdleTimeout:     o.streamIdle,
			MaxConnections:        maxConns,
			HandshakeTimeout:      o.handshakeTimeout,
			HTTPReadTimeout:       o.httpReadTimeout,
		},
		Logger:          log,
		Version:         version,
		DisableUI:       !o.ui,
		SpiceDBHTTPAddr: o.spicedbHTTPAddr,

		Peers:              o.peers,
		ClusterToken:       o.clusterToken,
		PeerRefresh:        o.peerRefresh,
		DispatchHedgeDelay: o.hedgeDelay,
		DispatchTimeout:    o.dispatchLimit,
	})
	if err != nil {
		return err
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	log.Info("pemba serving", "version", version, "datastore", o.datastore, "grpc", srv.Addr().String(), "http", o.httpAddr)
	if o.dev {
		printDevBanner(cmd.OutOrStdout(), srv.Addr().String(), o.httpAddr, devSecret)
	}
	serveErr := srv.Wait(ctx)
	log.Info("shutting down", "timeout", o.shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	log.Info("stopped")
	return serveErr
}

// listenerConnectionLimit raises the open-file limit and returns the
// connection cap of each listener.
func listenerConnectionLimit(o serveOptions, log *slog.Logger) (int, error) {
	nofile, err := raiseOpenFileLimit()
	if err != nil {
		return 0, err
	}
	listeners := 1
	if o.httpAddr != "" {
		listeners++
	}
	if o.metricsAddr != "" && o.metricsAddr != o.httpAddr {
		listeners++
	}
	n, err := connectionLimit(o.maxConnections, listeners, nofile)
	if err != nil {
		return 0, err
	}
	log.Info("connection limits", "open_file_limit", nofile, "reserved_descriptors", reservedDescriptors,
		"listeners", listeners, "max_connections_per_listener", n)
	return n, nil
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func printDevBanner(w io.Writer, grpcAddr, httpAddr, secret string) {
	fmt.Fprintf(w, `
Pemba development server
  gRPC      %s
  HTTP      http://%s  (/healthz /readyz /metrics /v1/...)
  explorer  http://%s/ui/  (sign in with the token)
  token     %s

Try it in another terminal:
  export PEMBA_ENDPOINT=%s PEMBA_TOKEN=%s
  printf 'definition user {}\ndefinition document {\n  relation viewer: user\n  permission view = viewer\n}\n' > schema.zed
  ./bin/pemba schema write schema.zed
  ./bin/pemba relationship create document:readme viewer user:alice
  ./bin/pemba check document:readme view user:alice

`, grpcAddr, httpAddr, httpAddr, secret, grpcAddr, secret)
	if f, ok := w.(*os.File); ok {
		_ = f.Sync()
	}
}

var errUnknownDatastore = errors.New("unknown datastore")
