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

		ReadCacheBytes: o.readCacheBytes,
	}
}

// openDatastore opens the datastore the flags name.
func openDatastore(ctx context.Context, o serveOptions, log *slog.Logger) (openedStore, error) {
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
		engine, err = pebble.Open(pebble.Options{Dir: o.dataDir, GCWindow: o.gcWindow, GCInterval: o.gcInterval, CacheSize: o.blockCacheBytes})
		if err != nil {
			return openedStore{}, err
		}
		if id, err = instanceFile(filepath.Join(o.dataDir, "instance-id")); err != nil {
			engine.Close()
			return openedStore{}, err
		}
		log.Info("opened embedded datastore", "dir", o.dataDir)
	case "memory":
		engine, err = pebble.Open(pebble.Options{InMemory: true, GCWindow: o.gcWindow, GCInterval: o.gcInterval, CacheSize: o.blockCacheBytes})
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
		engine, err = sqlstore.Open(ctx, sqlstore.Config{Dialect: dialect, URL: o.datastoreURL, GCWindow: o.gcWindow, AutoMigrate: o.autoMigrate})
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
