package sql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/storage"
)

// TestStalledWriterReleasesTheCounter: a server that stops in the middle
// of a write — paused, or cut off from the database — while it holds the
// revision counter's lock does not stop the writes of the other servers
// on the database for longer than the idle-in-transaction timeout: the
// database ends the stalled transaction, which commits nothing.
func TestStalledWriterReleasesTheCounter(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	open := func(cfg Config) *Engine {
		cfg.URL, cfg.AutoMigrate = url, true
		e, err := Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	const timeout = 300 * time.Millisecond
	stalled, other := open(Config{IdleInTransactionTimeout: timeout}), open(Config{})

	// The stalled server's write: the counter's lock taken, then nothing.
	tx, err := stalled.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rev, _, _, _, err := takeRevision(ctx, tx, true)
	if err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithTimeout(ctx, 20*timeout)
	defer cancel()
	got, err := other.Write(wctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpTouch, Relationship: rel("document", "1", "viewer", "user", "alice")}}})
	if err != nil {
		t.Fatalf("a write beside a server stalled holding the counter's lock: %v", err)
	}
	if got != storage.Revision(rev) {
		t.Errorf("the write got revision %d, want %d (the stalled write's, which never committed)", got, rev)
	}
	// Resumed, the stalled write fails as an outage would: nothing of it
	// committed, and its client may retry.
	if err := tx.Commit(ctx); !errors.Is(unavailable(err), storage.ErrUnavailable) {
		t.Fatalf("the stalled write's commit after the database ended it: %v, want an unavailable error", err)
	}
}

// TestIdleInTransactionTimeout: the engine asks the database to end its
// transactions that idle longer than Config.IdleInTransactionTimeout
// (DefaultIdleInTransactionTimeout when zero), unless the URL sets
// idle_in_transaction_session_timeout itself.
func TestIdleInTransactionTimeout(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	for _, tc := range []struct {
		url     string
		timeout time.Duration
		want    string
	}{
		{url, 0, "10s"},
		{url, 1500 * time.Millisecond, "1500ms"},
		{url + "&idle_in_transaction_session_timeout=2500", time.Second, "2500ms"},
	} {
		e, err := Open(ctx, Config{URL: tc.url, AutoMigrate: true, IdleInTransactionTimeout: tc.timeout})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = e.pool.QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&got)
		e.Close()
		if err != nil || got != tc.want {
			t.Errorf("URL %s, timeout %s: idle_in_transaction_session_timeout = %q (%v), want %q", tc.url, tc.timeout, got, err, tc.want)
		}
	}
	if _, err := Open(ctx, Config{URL: url, IdleInTransactionTimeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "idle in transaction timeout") {
		t.Errorf("a negative timeout: %v, want an error naming it", err)
	}
}
