package sql

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pembadb/pemba/storage"
)

// Defaults for Config fields left zero.
const (
	DefaultGCWindow          = 24 * time.Hour
	DefaultWatchPollInterval = 100 * time.Millisecond
	// DefaultMaxConns is the connection pool size when the URL sets no
	// pool_max_conns (at least twice the CPUs).
	DefaultMaxConns = 16
	// DefaultIdleInTransactionTimeout is Config.IdleInTransactionTimeout's
	// default: far longer than any pause a write makes between its
	// statements, short enough that a stalled server holds up the others'
	// writes for seconds, not hours.
	DefaultIdleInTransactionTimeout = 10 * time.Second
)

// idleTimeoutParam is the session setting that ends a transaction idle
// for longer than its value, in milliseconds (PostgreSQL and CockroachDB).
const idleTimeoutParam = "idle_in_transaction_session_timeout"

// Config opens an Engine.
type Config struct {
	// Dialect is PostgreSQL (the default when empty) or CockroachDB.
	Dialect Dialect
	// URL is a libpq-style connection URL or DSN; pool settings such as
	// pool_max_conns may be given in it (default DefaultMaxConns).
	URL string
	// GCWindow is how long history stays readable (default 24h).
	GCWindow time.Duration
	// AutoMigrate applies pending migrations on Open instead of refusing
	// to run; for tests and development servers.
	AutoMigrate bool
	// WatchPollInterval is how often Watch looks for revisions committed
	// by other processes (default 100ms). Writes through this Engine wake
	// its watchers at once.
	WatchPollInterval time.Duration
	// DisableAudit writes no audit entries: writes skip the cost of the
	// audit log, and the log keeps only what was written while it was on
	// (by this or another server on the database).
	DisableAudit bool
	// IdleInTransactionTimeout is how long the database lets a
	// transaction of this engine wait for its next statement before it
	// ends the transaction and its session (default
	// DefaultIdleInTransactionTimeout). Every write holds the revision
	// counter's lock, which the writes of every server on the database
	// wait for, until it commits: a server that stops mid-write (paused,
	// or cut off from the database, which may not notice for hours) would
	// otherwise hold up all of them. An idle_in_transaction_session_timeout
	// in URL takes precedence.
	IdleInTransactionTimeout time.Duration
	// AuditRetention is how long audit entries are kept: when > 0,
	// CollectGarbage also trims the entries committed before
	// now - AuditRetention (TrimAudit). 0 keeps them forever.
	AuditRetention time.Duration

	// noAuditIndexer leaves audit entries unindexed until IndexAudit is
	// called, for tests of queries over the unindexed tail.
	noAuditIndexer bool
}

// Engine is a storage.Engine on PostgreSQL or CockroachDB.
type Engine struct {
	pool         *pgxpool.Pool
	dialect      Dialect
	gcWindow     time.Duration
	pollInterval time.Duration
	// audit is false when Config.DisableAudit is set.
	audit          bool
	auditRetention time.Duration
	closed         atomic.Bool
	// refreshing is set while AfterImport refreshes the relationships
	// table: imports that end meanwhile do not queue a VACUUM each, every
	// one waiting for the table's lock on a pooled connection.
	refreshing atomic.Bool

	// commitMu guards committed, a channel closed (and replaced) after each
	// write this Engine commits, or another process's write is announced
	// (notify.go), so watchers need not wait to poll.
	commitMu  sync.Mutex
	committed chan struct{}

	// stopIndexing ends the audit term indexer, which closes indexDone as
	// it exits; both nil when the audit log is disabled.
	stopIndexing context.CancelFunc
	indexDone    chan struct{}

	// stopListening ends the PostgreSQL notification listener, which
	// closes listenDone as it exits; both nil on CockroachDB.
	stopListening context.CancelFunc
	listenDone    chan struct{}

	// lastEntry is the audit entry this Engine's latest write sealed, so
	// the next write can chain to it without reading the chain's head
	// (write.go, takeRevision).
	lastEntry atomic.Pointer[chainLink]
	// lastEntryMissed is set when a write found lastEntry not the newest
	// (another server wrote in between), so the next one reads the head
	// with the counter update, in one round trip, instead of after it.
	lastEntryMissed atomic.Bool
	// headReads counts the writes that read the chain's head.
	headReads atomic.Int64

	// instanceMu guards instanceID, the database's identity once read
	// (migration 0002 draws it and nothing changes it, so it is read at
	// most once per Engine; a failed read is not cached).
	instanceMu sync.Mutex
	instanceID string
}

var (
	_ storage.Engine             = (*Engine)(nil)
	_ storage.InstanceIdentifier = (*Engine)(nil)
)

// Open connects to the database, checks its schema version (or migrates it
// when cfg.AutoMigrate is set) and returns the engine.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Dialect == "" {
		cfg.Dialect = PostgreSQL
	}
	if _, err := ParseDialect(string(cfg.Dialect)); err != nil {
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	if cfg.GCWindow <= 0 {
		cfg.GCWindow = DefaultGCWindow
	}
	if cfg.WatchPollInterval <= 0 {
		cfg.WatchPollInterval = DefaultWatchPollInterval
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	if err := setIdleTimeout(poolCfg.ConnConfig.RuntimeParams, cfg.IdleInTransactionTimeout); err != nil {
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	if !strings.Contains(cfg.URL, "pool_max_conns") {
		// pgxpool's default (the number of CPUs, at least 4) starves a
		// server whose checks fan out into many concurrent reads.
		poolCfg.MaxConns = int32(max(DefaultMaxConns, 2*runtime.GOMAXPROCS(0)))
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	if cfg.AutoMigrate {
		if _, err := migrate(ctx, cfg.Dialect, pool); err != nil {
			pool.Close()
			return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
		}
	}
	if err := checkSchemaVersion(ctx, cfg.Dialect, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s datastore: %w", cfg.Dialect, err)
	}
	e := &Engine{
		pool:           pool,
		dialect:        cfg.Dialect,
		gcWindow:       cfg.GCWindow,
		pollInterval:   cfg.WatchPollInterval,
		audit:          !cfg.DisableAudit,
		auditRetention: max(cfg.AuditRetention, 0),
		committed:      make(chan struct{}),
	}
	if e.dialect == PostgreSQL {
		listenCtx, stop := context.WithCancel(context.Background())
		e.stopListening, e.listenDone = stop, make(chan struct{})
		go e.listen(listenCtx, poolCfg.ConnConfig.Copy())
	}
	if e.audit && !cfg.noAuditIndexer {
		indexCtx, stop := context.WithCancel(context.Background())
		e.stopIndexing, e.indexDone = stop, make(chan struct{})
		go e.indexAuditContinuously(indexCtx, e.indexDone)
	}
	return e, nil
}

// setIdleTimeout sets the idle-in-transaction timeout among a
// connection's session parameters, unless the URL set one: timeout, or
// DefaultIdleInTransactionTimeout when it is 0.
func setIdleTimeout(params map[string]string, timeout time.Duration) error {
	switch {
	case timeout < 0:
		return fmt.Errorf("idle in transaction timeout: %s is negative", timeout)
	case timeout == 0:
		timeout = DefaultIdleInTransactionTimeout
	}
	if _, set := params[idleTimeoutParam]; !set {
		params[idleTimeoutParam] = strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)
	}
	return nil
}

// Close releases the connection pool. Calls after the first do nothing.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	if e.stopIndexing != nil {
		e.stopIndexing()
		<-e.indexDone
	}
	if e.stopListening != nil {
		e.stopListening()
		<-e.listenDone
	}
	e.pool.Close()
	return nil
}

// Dialect is the database the engine talks to.
func (e *Engine) Dialect() Dialect { return e.dialect }

// InstanceID returns the random ID the database was given when it was
// migrated to schema version 2. Every Engine on the same database returns
// the same ID, and another database a different one, which is what binds
// zookies to the database rather than to a server process.
func (e *Engine) InstanceID(ctx context.Context) (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	e.instanceMu.Lock()
	defer e.instanceMu.Unlock()
	if e.instanceID != "" {
		return e.instanceID, nil
	}
	var id string
	err := e.pool.QueryRow(ctx, stmtInstanceID).Scan(&id)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || (err == nil && id == ""):
		// Only a hand edit gets here: migration 0002 is recorded only
		// after its row is written.
		return "", errors.New("read instance ID: table datastore_instance holds no ID")
	case err != nil:
		return "", fmt.Errorf("read instance ID: %w", err)
	}
	e.instanceID = id
	return id, nil
}

func (e *Engine) checkOpen() error {
	if e.closed.Load() {
		return storage.ErrClosed
	}
	return nil
}

// HeadRevision returns the newest committed revision.
func (e *Engine) HeadRevision(ctx context.Context) (storage.Revision, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	head, _, err := e.bounds(ctx, e.pool)
	if err != nil {
		return 0, fmt.Errorf("head revision: %w", err)
	}
	return head, nil
}

// bounds reads the head revision and the GC floor (the oldest readable
// revision).
func (e *Engine) bounds(ctx context.Context, q pgxQuerier) (head, floor storage.Revision, err error) {
	var h, f int64
	err = q.QueryRow(ctx, stmtBounds).Scan(&h, &f)
	return storage.Revision(h), storage.Revision(f), unavailable(err)
}

type pgxQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// SnapshotReader returns a reader at rev, which must lie between the GC
// floor and the head.
func (e *Engine) SnapshotReader(ctx context.Context, rev storage.Revision) (storage.Reader, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	head, floor, err := e.bounds(ctx, e.pool)
	if err != nil {
		return nil, fmt.Errorf("snapshot at revision %d: %w", rev, err)
	}
	if err := checkReadable(rev, head, floor); err != nil {
		return nil, fmt.Errorf("snapshot at revision %d: %w", rev, err)
	}
	return &reader{e: e, db: e.pool, rev: rev}, nil
}

func checkReadable(rev, head, floor storage.Revision) error {
	switch {
	case rev > head:
		return fmt.Errorf("%w (head is %d)", storage.ErrRevisionUnknown, head)
	case rev < floor:
		return fmt.Errorf("%w (oldest readable revision is %d)", storage.ErrRevisionTooOld, floor)
	}
	return nil
}

// notifyCommitted wakes every local watcher.
func (e *Engine) notifyCommitted() {
	e.commitMu.Lock()
	close(e.committed)
	e.committed = make(chan struct{})
	e.commitMu.Unlock()
}

// commitSignal returns a channel closed at the next local commit.
func (e *Engine) commitSignal() <-chan struct{} {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.committed
}
