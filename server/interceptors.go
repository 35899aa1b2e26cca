package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// deadline gives unary requests without a deadline the default one.
func (s *Server) deadline(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.limits.DefaultDeadline)
		defer cancel()
	}
	return handler(ctx, req)
}

// mapErrorsUnary turns handler errors into statuses (errors.go).
func (s *Server) mapErrorsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	return resp, toStatus(s.log, info.FullMethod, err)
}

func (s *Server) mapErrorsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return toStatus(s.log, info.FullMethod, handler(srv, ss))
}

// logUnary logs each request: failures at Info (client errors) or Error
// (server errors), successes at Debug.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logRequest(ctx, info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logRequest(ss.Context(), info.FullMethod, start, err)
	return err
}

// logRequest logs the end of a request. A server error is logged at
// Error unless the request ended because its client left or the server
// is shutting down (endedBy): a Watch ends that way as a matter of course.
func (s *Server) logRequest(ctx context.Context, method string, start time.Time, err error) {
	if strings.HasPrefix(method, "/grpc.health.") {
		return
	}
	attrs := []any{"method", method, "duration", time.Since(start)}
	if err == nil {
		s.log.Debug("request", attrs...)
		return
	}
	st := status.Convert(err)
	attrs = append(attrs, "code", st.Code().String(), "error", st.Message())
	level := slog.LevelInfo
	if by := s.endedBy(ctx, st.Code()); by != "" {
		attrs = append(attrs, "ended_by", by)
	} else if isServerFault(st.Code()) {
		level = slog.LevelError
	}
	s.log.Log(context.Background(), level, "request failed", attrs...)
}

// endedBy says who ended a request that failed with code, when that was
// not the server failing: "client" when the client cancelled, left or let
// its deadline pass (the request's context is done), "shutdown" when the
// server is shutting down and the request was told it is unavailable.
// It is "" otherwise.
func (s *Server) endedBy(ctx context.Context, code codes.Code) string {
	switch {
	case ctx.Err() != nil:
		return "client"
	case s.stopping.Err() != nil && code == codes.Unavailable:
		return "shutdown"
	}
	return ""
}
