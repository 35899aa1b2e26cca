package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// TestHTTPImportMalformedMessage: a message that does not decode stops
// an HTTP import with 400, and the messages before it are not committed
// as if the body had ended there.
func TestHTTPImportMalformedMessage(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	srv := newHTTPServer(t, engine, nil)
	ctx := context.Background()
	if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: viewerSchema}}); err != nil {
		t.Fatal(err)
	}
	good := `{"relationships": [{"resource": {"type": "doc", "id": "a"}, "relation": "viewer", "subject": {"object": {"type": "user", "id": "u"}}}]}`
	code, resp := post(t, srv, importPath, testSecret, strings.NewReader(good+"\n"+good+"\n"+`{"relationships": [{"resource": `), -1)
	if code != http.StatusBadRequest || !strings.Contains(resp, "malformed message after 0 committed relationships") {
		t.Fatalf("import with a malformed message: %d %s; want 400 naming 0 committed", code, resp)
	}
	if stored := storedAtHead(t, engine, storage.Filter{ResourceType: "doc"}); len(stored) > 0 {
		t.Fatalf("stored after a failed import: %v", stored)
	}
	code, resp = post(t, srv, importPath, testSecret, strings.NewReader(good+"\n"+good), -1)
	if code != http.StatusOK || !strings.Contains(resp, `"imported":"2"`) {
		t.Fatalf("well-formed import: %d %s", code, resp)
	}
}
