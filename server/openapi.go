package server

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI (Swagger 2.0) description of pemba.v1's
// HTTP/JSON routes, generated from the .proto files by proto/generate.sh
// (make proto) and committed beside this file.
//
//go:embed openapi/pemba.swagger.json
var openAPIDoc []byte

// openAPIPath is where the HTTP listener serves openAPIDoc.
const openAPIPath = "/openapi.json"

// serveOpenAPI answers GET (and HEAD) /openapi.json with the document. It
// needs no token: the document describes the public API, the same text as
// the .proto files, and holds nothing about this server or its data.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openAPIDoc)
}
