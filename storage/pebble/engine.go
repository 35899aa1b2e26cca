package pebble

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// Options configure Open.
type Options struct {
	// Dir is the data directory; it is created if missing. Ignored when
	// InMemory is set.
	Dir string
	// InMemory keeps everything in memory (Pebble's memory filesystem, no
	// write-ahead log): nothing survives Close.
	InMemory bool
	// GCWindow is how long history stays readable; default 24h.
	GCWindow time.Duration
	// GCInterval is how often the background collector runs; default one
	// minute, negative disables it (CollectGarbage still works).
	GCInterval time.Duration
	// CacheSize is the memory for Pebble's block cache and memtables (which
	// are charged to it), in bytes; default 256 MiB.
	CacheSize int64
	// NoSync acknowledges writes before they reach the disk. Only for
	// benchmarks and throwaway stores: a crash can lose acknowledged writes.
	NoSync bool
	// DisableAudit stores no audit entries; the storage.AuditLog methods
	// then return nothing (entries stored before stay on disk, untouched).
	DisableAudit bool
	// AuditRetention, when positive, makes the background collector also
	// remove the audit entries committed more than AuditRetention ago
	// (TrimAudit); 0 keeps them forever.
	AuditRetention time.Duration

	// fs, when set, is the filesystem the store is opened on under Dir
	// (tests: a crashable memory filesystem).
	fs vfs.FS
	// noAuditIndexer leaves audit entries unindexed until IndexAudit is
	// called, for tests of queries over the unindexed tail.
	noAuditIndexer bool
}

const (
	defaultGCWindow   = 24 * time.Hour
	defaultGCInterval = time.Minute
	defaultCacheSize  = 256 << 20
	// memTableSize is at most a quarter of the cache: Pebble charges live
	// memtables (up to two while one flushes) to the block cache.
	maxMemTableSize = 64 << 20
)

// Engine is the embedded storage.Engine. It is safe for concurrent use.
type Engine struct {
	db       *pdb.DB
	opts     Options
	writeOpt *pdb.WriteOptions

	// closeMu is held shared by every operation that touches db and
	// exclusively by Close, so db is never used after it is closed.
	closeMu sync.RWMutex
	closed  bool // guarded by closeMu

	// writeMu serializes writers: revision assignment, precondition,
	// schema-guard and CREATE checks and applying the batch happen while
	// holding it, so the store as of applied is exactly what the checks
	// saw. It is a one-slot channel rather than a sync.Mutex so a waiting
	// writer gives up when its context ends. The WAL sync happens after
	// it is released.
	writeMu chan struct{}
	// applied is the newest revision applied to Pebble (guarded by
	// writeMu); the head trails it while its sync is in flight.
	applied    storage.Revision
	lastCommit time.Time // guarded by writeMu; commit times never go back
	// schemaRev is the revision of the newest schema version applied
	// (guarded by writeMu), which a write's SchemaRevision guard compares.
	schemaRev storage.Revision
	// auditHead is the hash of the newest audit entry applied (guarded by
	// writeMu): the PrevHash of the next one. It changes only once the
	// batch holding an entry has been applied.
	auditHead storage.AuditHash

	// head is the newest durable revision: it is published after the WAL
	// sync covering it, and only grows, so a reader at head sees all of
	// it and nothing that could be lost.
	head atomic.Uint64
	// floor is the oldest readable revision. GC raises it before deleting
	// anything, and readers check it after opening (or borrowing) their
	// Pebble iterator.
	floor atomic.Uint64
	// iters keeps recently opened iterators for readers to reuse.
	iters iterPool
	// schema caches the newest schema version read so far, keyed by the
	// revision that wrote it: every request reads the schema in force at
	// its revision, almost always this one, and should not copy it.
	schema atomic.Pointer[storage.StoredSchema]
	// gcMu serializes garbage collection passes.
	gcMu sync.Mutex
	// trimMu serializes TrimAudit passes.
	trimMu sync.Mutex
	// indexMu serializes audit index passes with each other and with
	// TrimAudit; auditIndexed is the revision through which every audit
	// entry's terms are in the index ("m ai").
	indexMu      sync.Mutex
	auditIndexed atomic.Uint64
	// auditTrimmed is the newest revision TrimAudit removed ("m at"): a
	// posting list may still name revisions up to it, which readers skip.
	auditTrimmed atomic.Uint64
	// handed holds the index terms of committed entries that their writes
	// computed before the commit, so the indexer need not decode them
	// again (see commit.auditTerms).
	handed handedTerms

	// notifyMu guards notify, a channel closed (and replaced) on every
	// commit and on Close to wake watchers.
	notifyMu sync.Mutex
	notify   chan struct{}

	stopGC chan struct{}
	gcDone sync.WaitGroup
}

var _ storage.Engine = (*Engine)(nil)

// Open opens (or creates) an embedded store.
func Open(opts Options) (*Engine, error) {
	if opts.GCWindow == 0 {
		opts.GCWindow = defaultGCWindow
	}
	if opts.GCWindow < 0 {
		return nil, fmt.Errorf("open datastore: GC window %v is negative", opts.GCWindow)
	}
	if opts.AuditRetention < 0 {
		return nil, fmt.Errorf("open datastore: audit retention %v is negative", opts.AuditRetention)
	}
	if opts.GCInterval == 0 {
		opts.GCInterval = defaultGCInterval
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = defaultCacheSize
	}
	if !opts.InMemory && opts.Dir == "" {
		return nil, errors.New("open datastore: a data directory is required unless in memory")
	}
	cache := newShardedBlockCache(opts.CacheSize, pdb.NewCache)
	defer cache.Unref()
	po := &pdb.Options{
		Cache:                 cache,
		MemTableSize:          uint64(min(maxMemTableSize, opts.CacheSize/4)),
		L0CompactionThreshold: 4,
		L0StopWritesThreshold: 24,
		FormatMajorVersion:    pdb.FormatNewest,
		Logger:                quietLogger{},
	}
	dir := opts.Dir
	if opts.fs != nil {
		po.FS = opts.fs
	}
	if opts.InMemory {
		po.FS = vfs.NewMem()
		po.DisableWAL = true
		dir = ""
	}
	db, err := pdb.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open datastore %q: %w", opts.Dir, err)
	}
	e := &Engine{db: db, opts: opts, writeOpt: pdb.Sync, writeMu: make(chan struct{}, 1),
		notify: make(chan struct{}), stopGC: make(chan struct{})}
	if opts.InMemory || opts.NoSync {
		e.writeOpt = pdb.NoSync
	}
	if err := e.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open datastore %q: %w", opts.Dir, err)
	}
	if opts.GCInterval > 0 {
		e.gcDone.Add(1)
		go e.collectPeriodically()
	}
	if !opts.DisableAudit && !opts.noAuditIndexer {
		e.gcDone.Add(1)
		go e.indexAuditContinuously()
	}
	return e, nil
}

// loadHead reads the head revision and its commit time: from the newest
// revision record or audit entry, whichever is newer (a revision its
// audit entry records has no revision record; see recordedByAudit).
func (e *Engine) loadHead() error {
	newest := func(lower, upper []byte, commitTime func(v []byte) (time.Time, error)) (storage.Revision, time.Time, error) {
		it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return 0, time.Time{}, err
		}
		defer it.Close()
		if !it.Last() {
			return 0, time.Time{}, it.Error()
		}
		k := it.Key()
		rev := storage.Revision(beUint64(k[len(k)-8:]))
		at, err := commitTime(it.Value())
		if err != nil {
			return 0, time.Time{}, fmt.Errorf("revision %d: %w", rev, err)
		}
		return rev, at, nil
	}
	rev, at, err := newest([]byte{spaceRevision}, []byte{spaceRevision + 1}, func(v []byte) (time.Time, error) {
		rr, err := decodeRevisionRecord(v)
		return rr.committedAt, err
	})
	if err != nil {
		return err
	}
	arev, aat, err := newest(auditEntryKey(0), []byte{spaceAudit, auditEntry + 1}, auditlog.CommittedAt)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if arev > rev {
		rev, at = arev, aat
	}
	if rev > 0 {
		e.head.Store(uint64(rev))
		e.applied = rev
		e.lastCommit = at
	}
	return nil
}

// load reads the head revision, its commit time and the GC floor.
func (e *Engine) load() error {
	if err := e.loadHead(); err != nil {
		return err
	}
	var err error
	if e.schemaRev, err = e.newestSchemaRevision(); err != nil {
		return err
	}
	if e.auditHead, err = e.loadAuditHead(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if err := e.loadAuditIndexed(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	v, closer, err := e.db.Get(keyGCFloor)
	switch {
	case errors.Is(err, pdb.ErrNotFound):
	case err != nil:
		return err
	default:
		if len(v) != 8 {
			closer.Close()
			return fmt.Errorf("GC floor: %w", errCorrupt)
		}
		e.floor.Store(beUint64(v))
		closer.Close()
	}
	return nil
}

// newestSchemaRevision returns the revision of the newest stored schema
// version (0: none). Schema keys sort newest first.
func (e *Engine) newestSchemaRevision() (storage.Revision, error) {
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: []byte{spaceSchema}, UpperBound: []byte{spaceSchema + 1}})
	if err != nil {
		return 0, err
	}
	var rev storage.Revision
	if it.First() {
		rev = descRevision(it.Key()[1:])
	}
	return rev, it.Close()
}

// Close stops the background collector, wakes watchers and closes the store.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	if e.closed {
		e.closeMu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stopGC)
	e.closeMu.Unlock()
	e.gcDone.Wait()
	e.wakeWatchers()
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	e.iters.close()
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("close datastore: %w", err)
	}
	return nil
}

// use takes the shared close lock; it fails once the engine is closed.
func (e *Engine) use() (release func(), err error) {
	e.closeMu.RLock()
	if e.closed {
		e.closeMu.RUnlock()
		return nil, storage.ErrClosed
	}
	return e.closeMu.RUnlock, nil
}

// HeadRevision returns the newest committed revision.
func (e *Engine) HeadRevision(ctx context.Context) (storage.Revision, error) {
	release, err := e.use()
	if err != nil {
		return 0, err
	}
	release()
	return storage.Revision(e.head.Load()), nil
}

// SnapshotReader returns a reader at rev. It holds no resources: the
// revision suffixes in the keys do the isolation.
func (e *Engine) SnapshotReader(ctx context.Context, rev storage.Revision) (storage.Reader, error) {
	release, err := e.use()
	if err != nil {
		return nil, err
	}
	release()
	if err := e.checkReadable(rev); err != nil {
		return nil, fmt.Errorf("snapshot reader: %w", err)
	}
	return &reader{e: e, rev: rev}, nil
}

func (e *Engine) checkReadable(rev storage.Revision) error {
	if h := storage.Revision(e.head.Load()); rev > h {
		return fmt.Errorf("revision %d is above the head %d: %w", rev, h, storage.ErrRevisionUnknown)
	}
	if f := storage.Revision(e.floor.Load()); rev < f {
		return fmt.Errorf("revision %d is below the oldest readable revision %d: %w", rev, f, storage.ErrRevisionTooOld)
	}
	return nil
}

func (e *Engine) wakeWatchers() {
	e.notifyMu.Lock()
	close(e.notify)
	e.notify = make(chan struct{})
	e.notifyMu.Unlock()
}

func (e *Engine) changed() <-chan struct{} {
	e.notifyMu.Lock()
	defer e.notifyMu.Unlock()
	return e.notify
}

// collectPeriodically runs the background collector until Close, which
// also cancels a pass in progress.
func (e *Engine) collectPeriodically() {
	defer e.gcDone.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-e.stopGC
		cancel()
	}()
	t := time.NewTicker(e.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stopGC:
			return
		case now := <-t.C:
			e.maintain(ctx, now)
		}
	}
}

// maintain is one pass of the background collector: garbage collection,
// then the audit log's retention. Failures are logged; the next pass
// tries again.
func (e *Engine) maintain(ctx context.Context, now time.Time) {
	quiet := func(err error) bool {
		return err == nil || errors.Is(err, storage.ErrClosed) || ctx.Err() != nil
	}
	if err := e.CollectGarbage(ctx, now); !quiet(err) {
		log.Printf("pemba: datastore garbage collection: %v", err)
	}
	if e.opts.AuditRetention <= 0 {
		return
	}
	if _, err := e.TrimAudit(ctx, now.Add(-e.opts.AuditRetention)); !quiet(err) {
		log.Printf("pemba: audit log retention: %v", err)
	}
}

// quietLogger drops Pebble's informational messages and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(format string, a ...any) { log.Printf("pebble: "+format, a...) }
func (quietLogger) Fatalf(format string, a ...any) { log.Fatalf("pebble: "+format, a...) }

// StoreStats reports the block cache's counters and the store's layout;
// a closed store reports nothing.
func (e *Engine) StoreStats() storage.StoreStats {
	release, err := e.use()
	if err != nil {
		return storage.StoreStats{}
	}
	m := e.db.Metrics()
	release()
	st := storage.StoreStats{
		BlockCacheBytes:     m.BlockCache.Size,
		BlockCacheHits:      m.BlockCache.Hits,
		BlockCacheMisses:    m.BlockCache.Misses,
		ReadAmplification:   m.ReadAmp(),
		LevelBytes:          make([]int64, len(m.Levels)),
		LevelTables:         make([]int64, len(m.Levels)),
		CompactionDebtBytes: m.Compact.EstimatedDebt,
	}
	for i, l := range m.Levels {
		st.LevelBytes[i], st.LevelTables[i] = l.TablesSize, l.TablesCount
	}
	return st
}
