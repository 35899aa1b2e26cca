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

// This file is the one place engine errors become gRPC statuses. Handlers
// return plain (wrapped) errors or statuses built with invalidField; the
// errorInterceptor passes every error through toStatus.

// fieldError names the request field a bad value came from.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// inField wraps err with the request field it is about; nil stays nil.
func inField(field string, err error) error {
	if err == nil {
		return nil
	}
	return &fieldError{field: field, err: err}
}

// invalidField is an INVALID_ARGUMENT status naming the field.
func invalidField(field, format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, "%s: %s", field, fmt.Sprintf(format, args...))
}

// invalidError is an INVALID_ARGUMENT whose message already names the
// field; it travels through engine code that wraps plain errors.
type invalidError string

func (e invalidError) Error() string { return string(e) }

// plainInvalid turns an INVALID_ARGUMENT status into an invalidError.
func plainInvalid(err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument {
		return invalidError(st.Message())
	}
	return err
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
	case errors.Is(err, core.ErrNoSchema):
		return status.Error(codes.FailedPrecondition, msg)
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
	var fe *fieldError
	var ie invalidError
	if errors.As(err, &fe) || errors.As(err, &ie) {
		return status.Error(codes.InvalidArgument, msg)
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
