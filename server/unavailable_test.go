package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/storage"
)

// TestDatastoreOutageIsUnavailable: connection failures are UNAVAILABLE
// (which clients retry), not INTERNAL, and their message does not carry
// the database's address or user.
func TestDatastoreOutageIsUnavailable(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dial := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5432}, Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("head revision: %w: failed to connect to `user=pemba database=authz`: %w", storage.ErrUnavailable, dial), codes.Unavailable},
		{fmt.Errorf("query relationships: %w", dial), codes.Unavailable},
		{fmt.Errorf("read schema: %w", io.ErrUnexpectedEOF), codes.Unavailable},
		{fmt.Errorf("x: %w", storage.ErrClosed), codes.Unavailable},
		// A deadline is the caller's, even wrapped with an outage.
		{fmt.Errorf("%w: %w", storage.ErrUnavailable, context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("disk on fire"), codes.Internal},
	} {
		st := status.Convert(toStatus(log, "/test", c.err))
		if st.Code() != c.want {
			t.Errorf("toStatus(%v) = %s, want %s", c.err, st.Code(), c.want)
		}
		if c.want == codes.Unavailable && (strings.Contains(st.Message(), "10.1.2.3") || strings.Contains(st.Message(), "user=")) {
			t.Errorf("toStatus(%v) message %q shows the datastore's address", c.err, st.Message())
		}
	}
}
