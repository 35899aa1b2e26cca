package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// openAPIDocument is the part of a Swagger 2.0 document the tests read.
type openAPIDocument struct {
	Swagger string                                `json:"swagger"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// routes lists the document's operations as "METHOD /path", sorted.
func (d openAPIDocument) routes() []string {
	var out []string
	for path, ops := range d.Paths {
		for method := range ops {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIServed: GET /openapi.json needs no token and answers the
// embedded document as JSON.
func TestOpenAPIServed(t *testing.T) {
	srv := newHTTPServer(t, nil, nil)
	resp, err := http.Get("http://" + srv.HTTPAddr().String() + openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s without a token: %d, Content-Type %q; want 200, application/json",
			openAPIPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc openAPIDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: not JSON: %v", openAPIPath, err)
	}
	if doc.Swagger != "2.0" || len(doc.Paths) == 0 {
		t.Fatalf("GET %s: swagger %q with %d paths; want a Swagger 2.0 document with paths", openAPIPath, doc.Swagger, len(doc.Paths))
	}
	if code, _ := httpPost(t, srv, openAPIPath, "{}"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST %s: %d, want 405", openAPIPath, code)
	}
}

// TestOpenAPIListsEveryRoute: the document lists exactly the HTTP routes
// of the pemba.v1 services the server registers, and the gateway serves
// each of them. A new RPC (or service) whose document was not
// regenerated with `make proto` fails here.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	srv := newHTTPServer(t, nil, nil)
	var doc openAPIDocument
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("embedded OpenAPI document: %v", err)
	}
	var want []string
	for name := range srv.grpc.GetServiceInfo() {
		if strings.HasPrefix(name, "pemba.v1.") {
			want = append(want, serviceRoutes(t, protoreflect.FullName(name))...)
		}
	}
	slices.Sort(want)
	if got := doc.routes(); !slices.Equal(got, want) {
		t.Fatalf("the OpenAPI document is stale (run `make proto`): it lacks %q and has %q, which no registered pemba.v1 service serves",
			missing(want, got), missing(got, want))
	}
	// A route the gateway serves answers another method with 405; a path
	// it does not serve is 404.
	for _, route := range want {
		method, path, _ := strings.Cut(route, " ")
		other := http.MethodGet
		if method == http.MethodGet {
			other = http.MethodPost
		}
		req, err := http.NewRequest(other, "http://"+srv.HTTPAddr().String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d; want 405, as the gateway serves %s", other, path, resp.StatusCode, route)
		}
	}
}

// missing returns the elements of want that got lacks.
func missing(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	return out
}

// serviceRoutes returns the HTTP routes ("METHOD /path") of the named
// service's RPCs, from their google.api.http options.
func serviceRoutes(t *testing.T, name protoreflect.FullName) []string {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	var out []string
	methods := d.(protoreflect.ServiceDescriptor).Methods()
	for i := range methods.Len() {
		rule, _ := proto.GetExtension(methods.Get(i).Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue
		}
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			out = append(out, httpRoute(r))
		}
	}
	return out
}

// httpRoute is an HttpRule as "METHOD /path".
func httpRoute(r *annotations.HttpRule) string {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET " + p.Get
	case *annotations.HttpRule_Put:
		return "PUT " + p.Put
	case *annotations.HttpRule_Post:
		return "POST " + p.Post
	case *annotations.HttpRule_Delete:
		return "DELETE " + p.Delete
	case *annotations.HttpRule_Patch:
		return "PATCH " + p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind() + " " + p.Custom.GetPath()
	}
	return "unknown pattern " + r.String()
}

// TestOpenAPIUpToDate: the committed document is what proto/generate.sh
// generates from the .proto files today. It needs protoc: without it the
// test skips, except under CI=true, where it fails.
func TestOpenAPIUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs protoc-gen-openapiv2")
	}
	if _, err := exec.LookPath("protoc"); err != nil {
		if strings.EqualFold(os.Getenv("CI"), "true") {
			t.Fatal("protoc not found (apt-get install protobuf-compiler); CI must check the OpenAPI document")
		}
		t.Skip("protoc not found (apt-get install protobuf-compiler)")
	}
	dir := t.TempDir()
	out, err := exec.Command(filepath.Join("..", "proto", "generate.sh"), "openapi", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("proto/generate.sh openapi: %v\n%s", err, out)
	}
	generated, err := os.ReadFile(filepath.Join(dir, "pemba.swagger.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(generated, openAPIDoc) {
		t.Fatal("server/openapi/pemba.swagger.json differs from what proto/generate.sh generates: run `make proto` and commit the result")
	}
}
