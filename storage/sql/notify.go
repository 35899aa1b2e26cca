package sql

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// On PostgreSQL every write transaction also sends a notification on
// revisionChannel, which PostgreSQL delivers when (and only if) it
// commits. Each Engine listens on one dedicated connection and wakes its
// watchers, so Watch sees other processes' writes at once instead of at
// the next poll. Polling stays the safety net: a notification lost while
// the listener reconnects only delays a watcher until its next poll.
const (
	revisionChannel  = "pemba_revisions"
	pgNotifyRevision = "SELECT pg_notify('" + revisionChannel + "', $1)"
	pgListen         = "LISTEN " + revisionChannel
)

// listenRetry is how long the listener waits before reconnecting.
const listenRetry = time.Second

// listen relays revision notifications to local watchers until ctx ends.
func (e *Engine) listen(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(e.listenDone)
	for {
		_ = e.listenOnce(ctx, cfg) // watchers keep polling while it is down
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenRetry):
		}
	}
}

func (e *Engine) listenOnce(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, pgListen); err != nil {
		return err
	}
	// Revisions committed before LISTEN took effect sent no notification
	// this connection will see: wake the watchers to poll for them.
	e.notifyCommitted()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		e.notifyCommitted()
	}
}
