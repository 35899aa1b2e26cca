package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// This file is the one place errors become gRPC statuses. Handlers return
// plain (wrapped) errors; bad input is a core.FieldError, built here with
// invalidField or inField when the handler names a wire field itself, or
// by core with the field in the domain's words. The error interceptors
// pass every error through toStatus.

// errAuditDisabled answers the requests that read the audit log of a
// server whose log is disabled.
var errAuditDisabled = errors.New("the audit log is disabled on this server (pemba serve --audit=false): it records nothing")

// auditEnabled returns errAuditDisabled when the audit log is disabled.
func (s *Server) auditEnabled() error {
	if s.cfg.DisableAudit {
		return errAuditDisabled
	}
	return nil
}

// inField marks err as bad input in the named request field; nil stays
// nil. Errors the mapping knows more precisely (a revision too old, say)
// keep their own code.
func inField(field string, err error) error {
	if err == nil {
		return nil
	}
	return core.Invalid(core.Field(field), err)
}

// invalidField is bad input in the named request field.
func invalidField(field, format string, args ...any) error {
	return core.Invalid(core.Field(field), errors.New(fmt.Sprintf(format, args...)))
}

// toStatus maps err to a gRPC status error. Errors that already are
// statuses pass through; unknown errors become INTERNAL and are logged.
func toStatus(log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	msg := wireMessage(err)
	var exists *storage.AlreadyExistsError
	var schemaErrs schema.ErrorList
	var schemaErrsPtr *schema.ErrorList
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, msg)
	case errors.Is(err, core.ErrMalformedZookie), errors.Is(err, core.ErrForeignZookie), errors.Is(err, core.ErrMalformedCursor):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, storage.ErrRevisionTooOld):
		return status.Errorf(codes.FailedPrecondition,
			"%s; the zookie's revision has been garbage-collected: retry with fully_consistent or a newer zookie", msg)
	case errors.Is(err, storage.ErrRevisionUnknown):
		return status.Errorf(codes.FailedPrecondition, "%s; the zookie names a revision this datastore has not committed", msg)
	case errors.As(err, &exists):
		return status.Error(codes.AlreadyExists, msg)
	case errors.Is(err, storage.ErrPreconditionFailed):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, storage.ErrSchemaChanged):
		return status.Errorf(codes.Aborted, "%s; schema writes kept committing while the write was validated: retry", msg)
	case errors.Is(err, core.ErrSchemaOrphans):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, core.ErrNoSchema), errors.Is(err, errAuditDisabled):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, core.ErrImportBufferFull):
		return status.Error(codes.ResourceExhausted, msg)
	case errors.Is(err, check.ErrMaxDepth):
		return status.Errorf(codes.ResourceExhausted,
			"%s: the permission needs deeper recursion than the server's max depth allows (raise --max-depth, or look for a relationship chain that is too long)", msg)
	case errors.Is(err, check.ErrCycleThroughExclusion):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, storage.ErrInvalidArgument), errors.Is(err, graph.ErrInvalid), errors.Is(err, core.ErrInvalidInput),
		errors.Is(err, check.ErrInvalidRequest),
		errors.As(err, &schemaErrs), errors.As(err, &schemaErrsPtr):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, storage.ErrClosed):
		return status.Error(codes.Unavailable, msg)
	case errors.Is(err, storage.ErrUnavailable), connectionError(err):
		// The driver's message names the database's host, port and
		// user: it goes to the log, the client gets a generic reason.
		log.Error("datastore unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "datastore unavailable: retry with backoff")
	}
	log.Error("internal error", "method", method, "err", err)
	return status.Errorf(codes.Internal, "internal error: %s", msg)
}

// connectionError reports a network failure that reached the server
// without an engine marking it storage.ErrUnavailable: a broken or
// refused connection, or a reply cut short. Context errors, which also
// satisfy net.Error, are handled before this is asked.
func connectionError(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF)
}

// wireMessage is err's text, with the path of a core.FieldError in it
// named as pemba.v1's messages name their fields.
func wireMessage(err error) string {
	msg := err.Error()
	var fe *core.FieldError
	if errors.As(err, &fe) {
		msg = strings.Replace(msg, fe.Error(), fe.Render(pembaField), 1)
	}
	return msg
}

// pembaField names element i of p as pemba.v1 does: its SubjectRef nests
// the subject's object, so a subject's type is subject.object.type.
func pembaField(p core.Path, i int) string {
	if (p[i] == "type" || p[i] == "id") && i > 0 && p[i-1] == "subject" {
		return "object." + p[i]
	}
	return p[i]
}
