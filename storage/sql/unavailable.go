package sql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pembadb/pemba/storage"
)

// unavailable marks err with storage.ErrUnavailable when it says the
// database could not be reached or dropped the connection, so callers can
// tell an outage from a bad request or a bug. Other errors (nil included)
// pass through unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) || !connectionLost(err) {
		return err
	}
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// connectionLost reports whether err comes from the connection rather
// than the statement: dialing failed, the socket broke, or the server
// ended the session.
func connectionLost(err error) bool {
	// A context's deadline error also satisfies net.Error; it is the
	// caller's deadline, not an outage.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		connect *pgconn.ConnectError
		netErr  net.Error
		pgErr   *pgconn.PgError
	)
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, pgconn.ErrConnClosed):
		return true
	case errors.As(err, &pgErr):
		return unavailableState(pgErr.Code)
	}
	return false
}

// unavailableState reports SQLSTATEs that mean the server, not the
// statement, is the problem: class 08 (connection exception), a server
// shutting down or starting up (57P01-57P03), too many connections
// (53300), a session ended for idling in its transaction (25P03: this
// server stalled mid-write, see Config.IdleInTransactionTimeout).
func unavailableState(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", "53300", "25P03":
		return true
	}
	return len(code) == 5 && code[:2] == "08"
}
