package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSpiceDBHTTP: SpiceDB's HTTP/JSON paths and bodies work unchanged on
// the SpiceDB HTTP listener, with the same bearer tokens, while pemba.v1's
// HTTP API keeps its own listener.
func TestSpiceDBHTTP(t *testing.T) {
	srv := newHTTPServer(t, nil, func(c *Config) { c.SpiceDBHTTPAddr = "127.0.0.1:0" })
	base := "http://" + srv.SpiceDBHTTPAddr().String()
	post := func(path, body, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for _, step := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/v1/schema/write", `{"schema": "definition user {}\ndefinition document {\n relation viewer: user\n permission view = viewer\n}"}`, 200, `"writtenAt"`},
		{"/v1/relationships/write", `{"updates": [{"operation": "OPERATION_TOUCH", "relationship": {"resource": {"objectType": "document", "objectId": "readme"},
			"relation": "viewer", "subject": {"object": {"objectType": "user", "objectId": "alice"}}}}]}`, 200, `"writtenAt"`},
		{"/v1/permissions/check", `{"consistency": {"fullyConsistent": true}, "resource": {"objectType": "document", "objectId": "readme"},
			"permission": "view", "subject": {"object": {"objectType": "user", "objectId": "alice"}}}`, 200, `"PERMISSIONSHIP_HAS_PERMISSION"`},
		{"/v1/permissions/check", `{"consistency": {"fullyConsistent": true}, "resource": {"objectType": "document", "objectId": "readme"},
			"permission": "view", "subject": {"object": {"objectType": "user", "objectId": "bob"}}}`, 200, `"PERMISSIONSHIP_NO_PERMISSION"`},
		{"/v1/schema/read", `{}`, 200, `definition document`},
		{"/v1/relationships/read", `{"consistency": {"fullyConsistent": true}, "relationshipFilter": {"resourceType": "document"}}`, 200, `"objectId":"alice"`},
		{"/v1/permissions/check", `{"resource": {"objectType": "nope", "objectId": "x"}, "permission": "view",
			"subject": {"object": {"objectType": "user", "objectId": "alice"}}}`, 400, `nope`},
	} {
		code, body := post(step.path, step.body, testSecret)
		if code != step.code || !strings.Contains(strings.ReplaceAll(body, " ", ""), strings.ReplaceAll(step.want, " ", "")) {
			t.Fatalf("POST %s: %d %s; want %d containing %s", step.path, code, body, step.code, step.want)
		}
	}
	if code, _ := post("/v1/schema/read", `{}`, "wrong-token-123"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d, want 401", code)
	}
	// pemba.v1's HTTP API is unchanged on its own listener.
	if code, body := httpPost(t, srv, "/v1/permissions/check", `{"consistency": {"fullyConsistent": true}, "resource": {"type": "document", "id": "readme"},
		"permission": "view", "subject": {"object": {"type": "user", "id": "alice"}}}`); code != 200 || !strings.Contains(body, "HAS_PERMISSION") {
		t.Fatalf("pemba.v1 check: %d %s", code, body)
	}
}
