package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// idleReceiver receives a client stream's messages, failing when the
// client sends nothing for idle: a stream that stalls must not keep a
// handler (and whatever it holds) forever. Each receive runs on its own
// goroutine so the wait can end; a receive left behind by a timeout ends
// when the handler returns and gRPC tears the stream down.
type idleReceiver[T any] struct {
	recvFn func() (*T, error)
	idle   time.Duration
}

type received[T any] struct {
	msg *T
	err error
}

func newIdleReceiver[T any](recv func() (*T, error), idle time.Duration) *idleReceiver[T] {
	return &idleReceiver[T]{recvFn: recv, idle: idle}
}

// recv returns the next message, io.EOF at the end of the stream, or a
// DEADLINE_EXCEEDED status when none arrives within the idle timeout.
func (r *idleReceiver[T]) recv(ctx context.Context) (*T, error) {
	done := make(chan received[T], 1)
	go func() {
		msg, err := r.recvFn()
		done <- received[T]{msg, err}
	}()
	timer := time.NewTimer(r.idle)
	defer timer.Stop()
	select {
	case got := <-done:
		return got.msg, got.err
	case <-timer.C:
		return nil, status.Error(codes.DeadlineExceeded,
			fmt.Sprintf("the client sent nothing for %v (--stream-idle-timeout); the stream is closed", r.idle))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
