package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
	sqlstore "github.com/pembadb/pemba/storage/sql"
)

// openedStore is a datastore opened by serve, with the instance ID its
// zookies are bound to.
type openedStore struct {
	engine     storage.Engine
	instanceID string
}

func checkConfig(o serveOptions) check.Config {
	return check.Config{
		MaxDepth:     o.maxDepth,
		ChunkSize:    o.chunkSize,
		Concurrency:  o.concurrency,
		CacheEntries: o.cacheEntries,
		CacheBytes:   o.cacheBytes,

		ReadCacheBytes:   o.readCacheBytes,
		SetCacheBytes:    o.setCacheBytes,
		MaxExpandNodes:   o.maxExpandNodes,
		MaxAccessObjects: o.maxAccessObjects,
	}
}

// openDatastore opens the datastore the flags name, giving up after
// --datastore-timeout.
func openDatastore(ctx context.Context, o serveOptions, log *slog.Logger) (openedStore, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, o.datastoreTimeout,
		fmt.Errorf("no answer within --datastore-timeout %v", o.datastoreTimeout))
	defer cancel()
	store, err := openEngine(ctx, o, log)
	if err != nil && ctx.Err() != nil {
		return openedStore{}, fmt.Errorf("open %s datastore: %w", o.datastore, context.Cause(ctx))
	}
	return store, err
}

func openEngine(ctx context.Context, o serveOptions, log *slog.Logger) (openedStore, error) {
	var (
		engine storage.Engine
		id     string
		err    error
	)
	switch o.datastore {
	case "embedded":
		if o.dataDir == "" {
			return openedStore{}, fmt.Errorf("--data-dir is required for the embedded datastore")
		}
		if err := checkFreeSpace(o.dataDir); err != nil {
			return openedStore{}, err
		}
		engine, err = openPebble(ctx, pebble.Options{Dir: o.dataDir, GCWindow: o.gcWindow, GCInterval: o.gcInterval, CacheSize: o.blockCacheBytes,
			DisableAudit: !o.audit, AuditRetention: o.auditRetention})
		if err != nil {
			return openedStore{}, err
		}
		if id, err = instanceFile(filepath.Join(o.dataDir, "instance-id")); err != nil {
			engine.Close()
			return openedStore{}, err
		}
		log.Info("opened embedded datastore", "dir", o.dataDir)
	case "memory":
		engine, err = openPebble(ctx, pebble.Options{InMemory: true, GCWindow: o.gcWindow, GCInterval: o.gcInterval, CacheSize: o.blockCacheBytes,
			DisableAudit: !o.audit, AuditRetention: o.auditRetention})
		if err != nil {
			return openedStore{}, err
		}
		id = randomID()
		log.Warn("memory datastore: nothing survives a restart")
	case "postgres", "postgresql", "cockroachdb":
		dialect, err := sqlstore.ParseDialect(o.datastore)
		if err != nil {
			return openedStore{}, fmt.Errorf("--datastore: %w", err)
		}
		if o.datastoreURL == "" {
			return openedStore{}, fmt.Errorf("--datastore-url is required for --datastore %s", o.datastore)
		}
		engine, err = sqlstore.Open(ctx, sqlstore.Config{Dialect: dialect, URL: o.datastoreURL, GCWindow: o.gcWindow, AutoMigrate: o.autoMigrate,
			DisableAudit: !o.audit, AuditRetention: o.auditRetention})
		if err != nil {
			return openedStore{}, err
		}
		log.Info("opened SQL datastore", "dialect", dialect)
	default:
		return openedStore{}, fmt.Errorf("--datastore %q: %w (want embedded, memory, postgres or cockroachdb)", o.datastore, errUnknownDatastore)
	}
	if ident, ok := engine.(storage.InstanceIdentifier); ok {
		if id, err = ident.InstanceID(ctx); err != nil {
			engine.Close()
			return openedStore{}, fmt.Errorf("read datastore instance ID: %w", err)
		}
	}
	if id == "" {
		log.Warn("datastore has no instance ID: zookies are not bound to it")
	}
	return openedStore{engine: engine, instanceID: id}, nil
}

// openPebble opens a Pebble datastore, giving up when ctx ends:
// pebble.Open takes no context and can block for good (see
// checkFreeSpace). An open given up on is closed if it ever finishes;
// serve exits first.
func openPebble(ctx context.Context, opts pebble.Options) (*pebble.Engine, error) {
	type opened struct {
		engine *pebble.Engine
		err    error
	}
	done := make(chan opened, 1)
	go func() {
		e, err := pebble.Open(opts)
		done <- opened{e, err}
	}()
	select {
	case r := <-done:
		return r.engine, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.engine != nil {
				r.engine.Close()
			}
		}()
		return nil, context.Cause(ctx)
	}
}

// minFreeBytes is the space the embedded datastore needs at start beyond
// its write-ahead log: a new manifest, options file and log.
const minFreeBytes = 1 << 20

// checkFreeSpace refuses to open the embedded datastore on a file system
// without room for it. Opening flushes the write-ahead log left by the
// last run into a table; on a full disk Pebble retries that flush
// without pause (a core at 100%, thousands of logged errors a second) and
// its Open never returns, so serve would never listen.
func checkFreeSpace(dir string) error {
	existing := dir
	for {
		if _, err := os.Stat(existing); err == nil || filepath.Dir(existing) == existing {
			break
		}
		existing = filepath.Dir(existing)
	}
	free, err := freeBytes(existing)
	if err != nil {
		return nil // Pebble will report what is wrong with the directory
	}
	wal := walBytes(dir)
	if need := wal + minFreeBytes; free < need {
		return fmt.Errorf("--data-dir %s: %w: %d bytes free, but opening the embedded datastore needs about %d "+
			"(its %d-byte write-ahead log is flushed at start, plus 1 MiB); free some space or move the data directory",
			dir, syscall.ENOSPC, free, need, wal)
	}
	return nil
}

// walBytes is the size of the Pebble write-ahead logs in dir.
func walBytes(dir string) uint64 {
	entries, _ := os.ReadDir(dir)
	var n uint64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && strings.HasSuffix(e.Name(), ".log") {
			n += uint64(info.Size())
		}
	}
	return n
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// instanceFile returns the instance ID kept in path, creating it on first
// use (written to a temporary file and renamed, so it is never half there).
func instanceFile(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !os.IsNotExist(err) {
		return "", fmt.Errorf("read instance ID: %w", err)
	}
	id := randomID()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write instance ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write instance ID: %w", err)
	}
	return id, nil
}
