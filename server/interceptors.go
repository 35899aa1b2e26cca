package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
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
	s.logRequest(info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logRequest(info.FullMethod, start, err)
	return err
}

func (s *Server) logRequest(method string, start time.Time, err error) {
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
	if isServerFault(st.Code()) {
		level = slog.LevelError
	}
	s.log.Log(context.Background(), level, "request failed", attrs...)
}
