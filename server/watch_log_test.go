package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// logBuffer collects a server's JSON log lines; the server logs from
// many goroutines, so mu guards buf.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the lines logged so far, decoded.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// watchEnd returns the record that logged the end of a Watch, if any.
func watchEnd(recs []map[string]any) map[string]any {
	for _, rec := range recs {
		if m, _ := rec["method"].(string); strings.HasSuffix(m, "WatchService/Watch") {
			return rec
		}
	}
	return nil
}

// watchOver opens a Watch on srv over one transport and returns once the
// Watch has received its first change, with functions that wait for the
// stream's end and that drop the client's connection.
type watchOver func(t *testing.T, ctx context.Context, srv *Server, after storage.Revision) (wait, disconnect func())

// TestWatchEndNotLoggedAsError: a Watch ended by its client (cancelled or
// disconnected) or by the server shutting down is an ordinary end: it is
// logged, but not at ERROR, on pemba.v1 over gRPC and HTTP and on
// authzed.api.v1.
func TestWatchEndNotLoggedAsError(t *testing.T) {
	transports := []struct {
		name string
		open watchOver
	}{
		{"pemba.v1 gRPC", watchPembaGRPC},
		{"pemba.v1 HTTP", watchPembaHTTP},
		{"authzed.api.v1 gRPC", watchAuthzedToEnd},
	}
	for _, tr := range transports {
		for _, end := range []string{"client cancels", "client disconnects", "server shuts down"} {
			t.Run(tr.name+", "+end, func(t *testing.T) {
				logs := &logBuffer{}
				engine, err := pebble.Open(pebble.Options{InMemory: true})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { engine.Close() })
				srv := newHTTPServer(t, engine, func(c *Config) {
					c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				})
				after := writeDocChange(t, engine)

				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				streamCtx, endStream := context.WithCancel(ctx)
				defer endStream()
				wait, disconnect := tr.open(t, streamCtx, srv, after)
				switch end {
				case "client cancels":
					endStream()
				case "client disconnects":
					disconnect()
				case "server shuts down":
					srv.Shutdown(ctx)
				}
				wait()
				// The server logs the end after the client sees it: wait
				// for the record (bounded by ctx; nothing is timed).
				var end map[string]any
				for end == nil && ctx.Err() == nil {
					if end = watchEnd(logs.records(t)); end == nil {
						time.Sleep(10 * time.Millisecond)
					}
				}
				if end == nil {
					t.Fatal("the Watch's end was not logged")
				}
				for _, rec := range logs.records(t) {
					if rec["level"] == slog.LevelError.String() {
						t.Errorf("logged at ERROR: %v", rec)
					}
				}
			})
		}
	}
}

// writeDocChange writes a schema and then one relationship to engine and
// returns the revision before the relationship, so a Watch after it
// receives a change at once.
func writeDocChange(t *testing.T, engine storage.Engine) storage.Revision {
	t.Helper()
	ctx := context.Background()
	meta := storage.WriteMetadata{Actor: "t"}
	after, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{
		Text: "definition user {}\ndefinition doc {\n relation viewer: user\n}"}, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
		Relationship: graph.MustParseRelationship("doc:d#viewer@user:u")}}}); err != nil {
		t.Fatal(err)
	}
	return after
}

// afterFirst receives the first change of a watch stream and returns a
// function that receives the rest until the stream ends.
func afterFirst[T any](t *testing.T, recv func() (T, error)) (wait func()) {
	t.Helper()
	if _, err := recv(); err != nil {
		t.Fatalf("first change: %v", err)
	}
	return func() {
		for {
			if _, err := recv(); err != nil {
				return
			}
		}
	}
}

func watchPembaGRPC(t *testing.T, ctx context.Context, srv *Server, after storage.Revision) (wait, disconnect func()) {
	cc := dialTest(t, srv)
	stream, err := pb.NewWatchServiceClient(cc).Watch(ctx, &pb.WatchRequest{Since: srv.zookie(after)})
	if err != nil {
		t.Fatal(err)
	}
	return afterFirst(t, stream.Recv), func() { cc.Close() }
}

func watchAuthzedToEnd(t *testing.T, ctx context.Context, srv *Server, after storage.Revision) (wait, disconnect func()) {
	cc := dialTest(t, srv)
	stream, err := v1.NewWatchServiceClient(cc).Watch(ctx, &v1.WatchRequest{OptionalStartCursor: srv.zedToken(after)})
	if err != nil {
		t.Fatal(err)
	}
	return afterFirst(t, stream.Recv), func() { cc.Close() }
}

func watchPembaHTTP(t *testing.T, ctx context.Context, srv *Server, after storage.Revision) (wait, disconnect func()) {
	body := `{"since": {"token": "` + srv.zookie(after).GetToken() + `"}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+srv.HTTPAddr().String()+"/v1/watch", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"result"`) {
		t.Fatalf("first change: %q, %v", lines.Text(), lines.Err())
	}
	// Closing the body before its end closes the connection.
	return func() {
		for lines.Scan() {
		}
		resp.Body.Close()
	}, func() { resp.Body.Close() }
}

// TestLogRequestLevel: a server error is logged at ERROR unless the
// client had left (a stream whose send failed as its connection closed)
// or the server was shutting down; client errors are INFO, successes
// DEBUG.
func TestLogRequestLevel(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(live)
	cancel()
	for _, c := range []struct {
		name     string
		ctx      context.Context
		stopping bool
		err      error
		level    slog.Level
		endedBy  string
	}{
		{"success", live, false, nil, slog.LevelDebug, ""},
		{"client error", live, false, status.Error(codes.InvalidArgument, "bad"), slog.LevelInfo, ""},
		{"server error", live, false, status.Error(codes.Internal, "bug"), slog.LevelError, ""},
		{"datastore down", live, false, status.Error(codes.Unavailable, "datastore unavailable"), slog.LevelError, ""},
		{"client cancelled", gone, false, status.Error(codes.Canceled, "context canceled"), slog.LevelInfo, "client"},
		{"send after the client left", gone, false, status.Error(codes.Unavailable, "transport is closing"), slog.LevelInfo, "client"},
		{"shutdown", live, true, status.Error(codes.Unavailable, "server is shutting down"), slog.LevelInfo, "shutdown"},
		{"server error during shutdown", live, true, status.Error(codes.Internal, "bug"), slog.LevelError, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &logBuffer{}
			stopping, stop := context.WithCancel(context.Background())
			defer stop()
			if c.stopping {
				stop()
			}
			s := &Server{
				log:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				stopping: stopping,
			}
			s.logRequest(c.ctx, "/pemba.v1.WatchService/Watch", time.Now(), c.err)
			recs := logs.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d records, want 1: %v", len(recs), recs)
			}
			endedBy, _ := recs[0]["ended_by"].(string)
			if recs[0]["level"] != c.level.String() || endedBy != c.endedBy {
				t.Errorf("logged %v; want level %s, ended_by %q", recs[0], c.level, c.endedBy)
			}
		})
	}
}
