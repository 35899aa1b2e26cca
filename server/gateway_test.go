package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

// countingBody is an endless request body of spaces that counts the bytes
// the client's transport took from it, up to size.
type countingBody struct {
	size int64
	read atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	left := b.size - b.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), left))
	for i := range p[:n] {
		p[i] = ' '
	}
	b.read.Add(int64(n))
	return n, nil
}

// post sends body to srv's HTTP listener with token (none when "").
func post(t *testing.T, srv *Server, path, token string, body io.Reader, length int64) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+srv.HTTPAddr().String()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestGatewayAuthenticatesBeforeReading: a large body without a token is
// refused with 401 before the server reads it (the gateway used to
// buffer and decode the whole body first).
func TestGatewayAuthenticatesBeforeReading(t *testing.T) {
	srv := newHTTPServer(t, nil, nil)
	const size = 64 << 20
	for _, token := range []string{"", "wrong-secret"} {
		body := &countingBody{size: size}
		code, resp := post(t, srv, "/v1/schema/write", token, body, size)
		if code != http.StatusUnauthorized || !strings.Contains(resp, `"code":16`) {
			t.Errorf("token %q: %d %s; want 401 with an UNAUTHENTICATED JSON body", token, code, resp)
		}
		// The kernel's socket buffers and the server's post-handler
		// discard take a few MiB at most; the body is 64 MiB.
		if sent := body.read.Load(); sent > size/4 {
			t.Errorf("token %q: the server took %d of %d body bytes before refusing", token, sent, int64(size))
		}
	}
	if code, _ := httpGet(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz without a token: %d, want 200", code)
	}
}

// TestGatewayBodyLimit: an HTTP body over --max-message-bytes is 413
// naming the limit, whether its length is announced or not; an import
// stream may be longer than the limit as long as each message fits.
func TestGatewayBodyLimit(t *testing.T) {
	const limit = 64 << 10
	srv := newHTTPServer(t, nil, func(c *Config) { c.Limits.MaxMessageBytes = limit })
	schema := `{"schema": "definition user {}\ndefinition doc {\n relation viewer: user\n}"}`
	if code, resp := post(t, srv, "/v1/schema/write", testSecret, strings.NewReader(schema), int64(len(schema))); code != http.StatusOK {
		t.Fatalf("write schema: %d %s", code, resp)
	}
	big := `{"schema": "` + strings.Repeat("x", limit) + `"}`
	for _, c := range []struct {
		name   string
		body   io.Reader
		length int64
	}{
		{"announced length", strings.NewReader(big), int64(len(big))},
		{"chunked", iotest.OneByteReader(strings.NewReader(big)), -1},
	} {
		code, resp := post(t, srv, "/v1/schema/write", testSecret, c.body, c.length)
		if code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "--max-message-bytes") ||
			!strings.Contains(resp, fmt.Sprint(limit)) {
			t.Errorf("%s: %d %s; want 413 naming the limit", c.name, code, resp)
		}
	}

	// Import: 200 messages of ~1 KiB each (about 3x the limit in all).
	var stream bytes.Buffer
	for i := range 200 {
		var rels []string
		for j := range 10 {
			rels = append(rels, fmt.Sprintf(`{"resource": {"type": "doc", "id": "d%d_%d"}, "relation": "viewer", "subject": {"object": {"type": "user", "id": "u%d"}}}`, i, j, j))
		}
		fmt.Fprintf(&stream, "{\"relationships\": [%s]}\n", strings.Join(rels, ", "))
	}
	if stream.Len() <= limit {
		t.Fatalf("import stream of %d bytes does not pass the %d-byte limit", stream.Len(), limit)
	}
	code, resp := post(t, srv, importPath, testSecret, &stream, -1)
	var imported struct{ Imported string }
	if code != http.StatusOK || json.Unmarshal([]byte(resp), &imported) != nil || imported.Imported != "2000" {
		t.Errorf("import of small messages: %d %s; want 200 with 2000 imported", code, resp)
	}
	oversized := `{"relationships": [], "reason": "` + strings.Repeat("r", limit) + `"}`
	code, resp = post(t, srv, importPath, testSecret, strings.NewReader(oversized), -1)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "--max-message-bytes") {
		t.Errorf("import of one oversized message: %d %s; want 413", code, resp)
	}
}

// TestMessageReaderBoundaries: the per-message count restarts after each
// top-level value and is not fooled by brackets inside strings.
func TestMessageReaderBoundaries(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int64
		ok    bool
	}{
		{`{"a":1} {"b":2} {"c":3}`, 8, true},
		{`{"a":12345678}`, 8, false},
		{`{"a":"}}}}"}`, 8, false},
		{`{"a":"\"}"} {}`, 11, true},
		{`[{"a":[1,2]}]` + "\n" + `{}`, 13, true},
	} {
		m := &messageReader{body: io.NopCloser(strings.NewReader(c.in)), limit: &bodyLimit{bytes: c.limit}}
		_, err := io.ReadAll(m)
		if (err == nil) != c.ok {
			t.Errorf("%q with limit %d: err %v, want ok=%v", c.in, c.limit, err, c.ok)
		}
	}
}
