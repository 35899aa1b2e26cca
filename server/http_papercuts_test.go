package server

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// httpPost posts a JSON body to path with the test token.
func httpPost(tb testing.TB, srv *Server, path, body string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+srv.HTTPAddr().String()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestHTTPMethodNotAllowed: a GET on a POST route is 405 with an Allow
// header, not 501.
func TestHTTPMethodNotAllowed(t *testing.T) {
	srv := newHTTPServer(t, nil, nil)
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.HTTPAddr().String()+"/v1/permissions/check", nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET on a POST route: %d, Allow %q; want 405, Allow POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if code, _ := httpPost(t, srv, "/v1/no/such/route", "{}"); code != http.StatusNotFound {
		t.Fatalf("an unknown route: %d, want 404", code)
	}
}

// TestCaveatContextWrongTypeOverHTTP: a caveat context value of the wrong
// type is 400 naming the parameter on every RPC that takes a context.
func TestCaveatContextWrongTypeOverHTTP(t *testing.T) {
	srv := newHTTPServer(t, nil, nil)
	c := clientsOf(t, srv)
	ctx := context.Background()
	schemaText := "caveat small(amount int) { amount < 10 }\ndefinition user {}\ndefinition doc {\n relation viewer: user with small\n permission view = viewer\n}"
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: schemaText}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Updates: []*pb.RelationshipUpdate{touchUpdate(protoRel(t, "doc:d#viewer@user:u[small]"))}}); err != nil {
		t.Fatal(err)
	}
	const bad = `"consistency":{"fullyConsistent":true},"context":{"amount":"lots"}`
	for _, tc := range []struct{ path, body string }{
		{"/v1/permissions/check", `{"resource":{"type":"doc","id":"d"},"permission":"view","subject":{"object":{"type":"user","id":"u"}},` + bad + `}`},
		{"/v1/permissions/bulkcheck", `{"consistency":{"fullyConsistent":true},"items":[{"resource":{"type":"doc","id":"d"},"permission":"view","subject":{"object":{"type":"user","id":"u"}},"context":{"amount":"lots"}}]}`},
		{"/v1/permissions/resources", `{"resourceType":"doc","permission":"view","subject":{"object":{"type":"user","id":"u"}},` + bad + `}`},
		{"/v1/permissions/subjects", `{"resource":{"type":"doc","id":"d"},"permission":"view","subjectType":"user",` + bad + `}`},
	} {
		code, body := httpPost(t, srv, tc.path, tc.body)
		if tc.path == "/v1/permissions/bulkcheck" {
			// A bulk check answers per item: the item carries the error.
			if code != http.StatusOK || !strings.Contains(body, "amount") || !strings.Contains(body, "3") {
				t.Errorf("%s: %d %s; want the item's INVALID_ARGUMENT naming amount", tc.path, code, body)
			}
			continue
		}
		if code != http.StatusBadRequest && !(code == http.StatusOK && strings.Contains(body, `"code":3`)) {
			t.Errorf("%s: %d %s; want 400", tc.path, code, body)
		}
		if !strings.Contains(body, "amount") {
			t.Errorf("%s: %s does not name the parameter", tc.path, body)
		}
	}
}
