package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// closedByServer reports whether the server closes c (or answers and
// closes it) before wait passes, reading and discarding what it sends.
func closedByServer(t *testing.T, c net.Conn, wait time.Duration) bool {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

func dialRaw(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSilentConnectionsClosed: a connection that opens TCP and sends
// nothing (no HTTP/2 preface, no request headers) is closed after the
// handshake timeout instead of holding a descriptor for minutes.
func TestSilentConnectionsClosed(t *testing.T) {
	srv := newHTTPServer(t, nil, func(c *Config) { c.Limits.HandshakeTimeout = 200 * time.Millisecond })
	// The bound is far above the configured timeout; gRPC's own default
	// handshake timeout is 120s.
	const bound = 20 * time.Second
	if !closedByServer(t, dialRaw(t, srv.Addr()), bound) {
		t.Errorf("gRPC: a silent connection was still open after %v", bound)
	}
	c := dialRaw(t, srv.HTTPAddr())
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(t, c, bound) {
		t.Errorf("HTTP: a connection with unfinished headers was still open after %v", bound)
	}
}

// TestTrickledBodyTimesOut: an HTTP body sent a byte at a time is cut
// off by the read timeout rather than holding its connection forever.
func TestTrickledBodyTimesOut(t *testing.T) {
	srv := newHTTPServer(t, nil, func(c *Config) { c.Limits.HTTPReadTimeout = 300 * time.Millisecond })
	c := dialRaw(t, srv.HTTPAddr())
	const size = 200
	fmt.Fprintf(c, "POST /v1/schema/read HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", testSecret, size)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, c) // until the server closes c
	}()
	for sent := 0; ; sent++ {
		select {
		case <-closed:
			return // cut off before the body was complete
		case <-time.After(50 * time.Millisecond):
		}
		if sent == size {
			t.Fatalf("the server read a %d-byte body trickled over %v", size, size*50*time.Millisecond)
		}
		if _, err := c.Write([]byte{' '}); err != nil {
			return // the server closed the connection
		}
	}
}

// TestConnectionLimitPerListener: a listener holds at most MaxConnections
// connections; a flood of them does not stop the other listener.
func TestConnectionLimitPerListener(t *testing.T) {
	srv := newHTTPServer(t, nil, func(c *Config) { c.Limits.MaxConnections = 2 })
	for range 2 {
		dialRaw(t, srv.Addr()) // silent gRPC connections fill that listener
	}
	if code, _ := httpGet(t, srv, "/healthz"); code != http.StatusOK {
		t.Fatalf("HTTP with the gRPC listener full: %d", code)
	}

	// Fill the HTTP listener: a request on a third connection waits.
	idle := []net.Conn{dialRaw(t, srv.HTTPAddr()), dialRaw(t, srv.HTTPAddr())}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 500 * time.Millisecond}
	url := "http://" + srv.HTTPAddr().String() + "/healthz"
	if resp, err := client.Get(url); err == nil {
		resp.Body.Close()
		t.Fatalf("a third HTTP connection was served with MaxConnections 2")
	}
	for _, c := range idle {
		c.Close()
	}
	client.Timeout = time.Minute
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("after the idle connections closed: %v", err)
	}
	resp.Body.Close()
}

// TestHTTPWatchOutlivesReadTimeout: the read timeout bounds reading the
// request, not the response: a Watch over HTTP keeps streaming past it.
func TestHTTPWatchOutlivesReadTimeout(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	ctx := context.Background()
	meta := storage.WriteMetadata{Actor: "t"}
	if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}\ndefinition doc {\n relation viewer: user\n}"}, Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	const readTimeout = 200 * time.Millisecond
	srv := newHTTPServer(t, engine, func(c *Config) { c.Limits.HTTPReadTimeout = readTimeout })
	req, err := http.NewRequest(http.MethodPost, "http://"+srv.HTTPAddr().String()+"/v1/watch", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecret)
	// The gateway sends the response headers with the first event, so Do
	// returns only once the write below has been streamed.
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		done <- result{resp, err}
	}()
	time.Sleep(5 * readTimeout)
	_, err = engine.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
		Relationship: graph.MustParseRelationship("doc:readme#viewer@user:alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("watch: %v", r.err)
	}
	defer r.resp.Body.Close()
	line, err := bufio.NewReader(r.resp.Body).ReadString('\n')
	if r.resp.StatusCode != http.StatusOK || err != nil || !strings.Contains(line, "readme") {
		t.Errorf("watch event after the read timeout: %d %q, %v", r.resp.StatusCode, line, err)
	}
}
