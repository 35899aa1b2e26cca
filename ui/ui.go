// Package ui serves the access explorer: web pages for analysts and schema
// authors (who can access a resource, what a subject can access, why not,
// the audit timeline, expiring access, the schema) over Pemba's HTTP/JSON
// API. The pages are static files embedded in the binary; the browser
// calls the API on the same origin with the bearer token the user signs in
// with, so the explorer needs no server-side session and grants nothing
// the token does not.
package ui

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is the path the explorer is served under.
const Prefix = "/ui/"

// assetsPrefix is where its scripts and styles are served from; every
// other path under Prefix is a page, answered with the one HTML document
// that renders them all.
const assetsPrefix = Prefix + "assets/"

// contentSecurityPolicy allows scripts, styles and API calls from the
// server's own origin only: no inline script or style, no framing, no
// plugins. User data (reasons, labels, caveat context, schema comments) is
// inserted as text, never as markup, so it renders inert.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the explorer under Prefix.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		if name, ok := strings.CutPrefix(r.URL.Path, assetsPrefix); ok {
			serveAsset(w, r, sub, name)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(index))
	})
}

// serveAsset serves one embedded script or stylesheet, or 404.
func serveAsset(w http.ResponseWriter, r *http.Request, files fs.FS, name string) {
	if name == "" || strings.Contains(name, "/") || path.Ext(name) == ".html" {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
