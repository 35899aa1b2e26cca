package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// importPath is the HTTP mapping of ImportRelationships, a client stream:
// its body is a sequence of JSON messages.
const importPath = "/v1/relationships/import"

// guardGateway authenticates an HTTP/JSON request and caps its body before
// the gateway reads a byte of it: the gateway decodes a whole body before
// the gRPC interceptors (authentication, --max-message-bytes) see the
// message, so without this an anonymous client could make the server
// buffer any amount of memory. The interceptors still run on the
// forwarded call; this is the first of two checks, not a replacement.
func (s *Server) guardGateway(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.auth.check(r.Header.Values("Authorization")); err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeJSONError(w, http.StatusUnauthorized, status.Convert(err))
			return
		}
		limit := &bodyLimit{bytes: int64(s.limits.MaxMessageBytes)}
		if r.URL.Path == importPath {
			r.Body = &messageReader{body: r.Body, limit: limit}
		} else {
			if r.ContentLength > limit.bytes {
				writeJSONError(w, http.StatusRequestEntityTooLarge, limit.status())
				return
			}
			r.Body = &limitedBody{body: http.MaxBytesReader(w, r.Body, limit.bytes), limit: limit}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, limit)))
	})
}

// bodyLimit is a request's body cap and whether the body went past it.
type bodyLimit struct {
	bytes int64
	// exceeded is set by the body's reader and read by the gateway's
	// error handler, which turns the decoding error it caused into 413.
	exceeded atomic.Bool
}

type bodyLimitKey struct{}

func (l *bodyLimit) status() *status.Status {
	return status.Newf(codes.ResourceExhausted,
		"request body exceeds the server's message limit of %d bytes (--max-message-bytes)", l.bytes)
}

// limitedBody notes when http.MaxBytesReader stops a body at its limit.
type limitedBody struct {
	body  io.ReadCloser
	limit *bodyLimit
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.limit.exceeded.Store(true)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.body.Close() }

// errMessageTooLarge ends a streamed body whose message passed the limit.
var errMessageTooLarge = errors.New("request message too large")

// messageReader caps each top-level JSON value of a body that is a
// stream of them, so a long import is fine but a single huge message is
// not. It tracks nesting outside strings; whitespace between values
// counts toward the next one.
type messageReader struct {
	body  io.ReadCloser
	limit *bodyLimit

	n        int64 // bytes of the current value so far
	depth    int
	inString bool
	escaped  bool
}

func (m *messageReader) Read(p []byte) (int, error) {
	n, err := m.body.Read(p)
	for i := 0; i < n; i++ {
		m.n++
		if m.n > m.limit.bytes {
			m.limit.exceeded.Store(true)
			return i, errMessageTooLarge
		}
		m.scan(p[i])
	}
	return n, err
}

// scan advances the nesting state over one byte; a value ends when its
// outermost object or array closes.
func (m *messageReader) scan(c byte) {
	switch {
	case m.inString:
		switch {
		case m.escaped:
			m.escaped = false
		case c == '\\':
			m.escaped = true
		case c == '"':
			m.inString = false
		}
	case c == '"':
		m.inString = true
	case c == '{' || c == '[':
		m.depth++
	case c == '}' || c == ']':
		m.depth--
		if m.depth <= 0 {
			m.depth, m.n = 0, 0
		}
	}
}

func (m *messageReader) Close() error { return m.body.Close() }

// gatewayErrors answers a request whose body passed its limit with 413
// and leaves every other error to the gateway's default handler.
func gatewayErrors(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if limit, ok := r.Context().Value(bodyLimitKey{}).(*bodyLimit); ok && limit.exceeded.Load() {
		writeJSONError(w, http.StatusRequestEntityTooLarge, limit.status())
		return
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// writeJSONError writes st in the gateway's error format.
func writeJSONError(w http.ResponseWriter, code int, st *status.Status) {
	body, err := json.Marshal(struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
	}{st.Code(), st.Message()})
	if err != nil {
		body = []byte(fmt.Sprintf(`{"code":%d}`, st.Code()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// routingErrors answers a request no route matches: 405 with an Allow
// header for a known path asked with the wrong method (every pemba.v1
// route is a POST), 404 for an unknown path.
func routingErrors(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, httpStatus, status.Newf(codes.Unimplemented, "%s %s: method not allowed; use POST", r.Method, r.URL.Path))
		return
	}
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
}
