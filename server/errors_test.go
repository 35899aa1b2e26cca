package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

func TestToStatus(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, parseErr := graph.ParseRelationship("nope")
	for _, c := range []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{status.Error(codes.NotFound, "x"), codes.NotFound},
		{fmt.Errorf("read: %w", storage.ErrRevisionTooOld), codes.FailedPrecondition},
		{fmt.Errorf("read: %w", storage.ErrRevisionUnknown), codes.FailedPrecondition},
		{fmt.Errorf("write: %w", storage.ErrPreconditionFailed), codes.FailedPrecondition},
		{fmt.Errorf("write: %w", &storage.AlreadyExistsError{}), codes.AlreadyExists},
		{fmt.Errorf("write: %w", storage.ErrInvalidArgument), codes.InvalidArgument},
		{parseErr, codes.InvalidArgument},
		{fmt.Errorf("check: %w", check.ErrInvalidRequest), codes.InvalidArgument},
		{fmt.Errorf("check: %w", check.ErrMaxDepth), codes.ResourceExhausted},
		{fmt.Errorf("check: %w", check.ErrCycleThroughExclusion), codes.FailedPrecondition},
		{fmt.Errorf("zookie: %w", core.ErrMalformedZookie), codes.InvalidArgument},
		{core.ErrForeignZookie, codes.InvalidArgument},
		{core.ErrSchemaOrphans, codes.FailedPrecondition},
		{core.ErrNoSchema, codes.FailedPrecondition},
		{inField("updates[0]", fmt.Errorf("bad")), codes.InvalidArgument},
		{invalidField("f", "bad"), codes.InvalidArgument},
		{fmt.Errorf("import: %w", invalidField("f", "bad")), codes.InvalidArgument},
		{fmt.Errorf("x: %w", storage.ErrClosed), codes.Unavailable},
		{context.Canceled, codes.Canceled},
		{fmt.Errorf("q: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("disk on fire"), codes.Internal},
	} {
		if got := status.Code(toStatus(log, "/test", c.err)); got != c.want {
			t.Errorf("toStatus(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}
