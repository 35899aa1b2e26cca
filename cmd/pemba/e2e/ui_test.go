package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds a headless-capable Chromium: Debian's chromium
// package, which .ci/run installs. Without one the browser tests skip,
// except under CI=true, where they must run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found (apt-get install chromium); CI must run the browser tests")
	}
	t.Skip("no Chromium found (apt-get install chromium)")
	return ""
}

// browser is one headless Chromium tab driving the explorer.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu     sync.Mutex
	errors []string // JavaScript exceptions and CSP violations seen
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				b.mu.Lock()
				b.errors = append(b.errors, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs browser steps, failing the test with what for context.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	for i, step := range steps {
		if err := chromedp.Do(ctx, step); err != nil {
			b.fail(fmt.Sprintf("%s (step %d)", what, i+1), err)
		}
	}
}

// fail reports a failed step with the page as it was.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	{
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		page, _ := chromedp.Run(ctx, chromedp.OuterHTML("main"))
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		if len(page) > 2000 {
			page = page[:2000] + "…"
		}
		b.t.Fatalf("%s: %v\npage: %s", what, err, page)
	}
}

// open navigates to a path under the server and waits for the page to
// render its heading.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible("main h1"))
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot saves the whole page as a PNG in the test's artifact
// directory; a name ending in "-view" saves only the visible window.
func (b *browser) screenshot(name string) {
	shot := chromedp.FullScreenshot(100)
	if strings.HasSuffix(name, "-view") {
		shot = chromedp.CaptureScreenshot()
	}
	png, err := chromedp.Run(b.ctx, shot)
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(b.t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// text returns the text of the first element matching sel, once visible.
func (b *browser) text(sel string) string {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(sel))
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// unlabelledControls counts form controls a screen reader cannot name.
const unlabelledControls = `[...document.querySelectorAll('input, select, textarea, button')]
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
  .map(e => e.outerHTML)`

// loadIdentityPlatform loads the identity-platform example through the
// CLI, with a reason that carries markup.
func loadIdentityPlatform(t *testing.T, s *server) {
	t.Helper()
	s.mustCLI("schema", "write", filepath.Join(repoRoot(t), "examples", "identity-platform", "schema.zed"))
	s.mustCLI("import", filepath.Join(repoRoot(t), "examples", "identity-platform", "validation.yaml"),
		"--reason", xssReason, "--label", "ticket=SEC-7")
}

// xssReason is a write reason a careless page would turn into markup.
const xssReason = `<img src=x onerror="window.__pwned=1"> imported`

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "..")
}

// TestExplorer drives the access explorer in headless Chromium against a
// real server holding the identity-platform example: a wrong token is
// refused, sign-in shows the token's name, search finds objects as the
// user types, a resource lists who can access it and draws a path whose
// hops are links, why-not explains a denial, the audit timeline filters
// and renders a reason carrying markup as text, the schema page draws
// its diagram, every deep link opens its page, and every control has a
// label. Screenshots land in the test's artifact directory (go test
// -artifacts).
func TestExplorer(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	loadIdentityPlatform(t, s)
	// An access ending in three days is highlighted.
	s.mustCLI("relationship", "touch", "project:llm", "viewer", "user:zoe",
		"--expiration", time.Now().Add(72*time.Hour).UTC().Format(time.RFC3339))
	b := newBrowser(t, s.httpURL())

	// Unauthenticated visitors go to sign-in, then back where they were.
	b.do("redirect to sign-in", chromedp.Navigate(b.base+"/ui/schema"), chromedp.WaitVisible("#token"))
	b.screenshot("signin")
	b.do("wrong token", chromedp.SendKeys("#token", "not-the-token"), chromedp.Click("form button[type=submit]"),
		chromedp.WaitVisible(".error"))
	if got := b.text(".error"); !strings.Contains(got, "refused") {
		t.Fatalf("a wrong token says %q, want a refusal", got)
	}
	eval[string](b, "clear the token", `document.getElementById('token').value = ''`)
	b.do("sign in", chromedp.SendKeys("#token", tokenSecret),
		chromedp.Click("form button[type=submit]"), chromedp.WaitVisible("#schema-text"))
	if got := b.text("#whoami"); !strings.Contains(got, tokenName) {
		t.Fatalf("header says %q, want the token's name %q", got, tokenName)
	}
	token := eval[string](b, "token storage", `sessionStorage.getItem('pemba.token') + '|' + document.cookie + '|' + location.href`)
	if !strings.HasPrefix(token, tokenSecret+"|") || strings.Count(token, tokenSecret) != 1 {
		t.Fatalf("the token should live in sessionStorage only, not in a cookie or the URL: %q", token)
	}

	// Schema: the diagram and the coloured text.
	boxes := eval[int](b, "schema diagram", `document.querySelectorAll('.diagram .type').length`)
	if boxes < 8 {
		t.Fatalf("the schema diagram draws %d types, want every definition", boxes)
	}
	b.screenshot("schema")

	// Search: type-ahead over stored object IDs.
	b.open("/ui/?type=project")
	b.do("type-ahead", chromedp.SendKeys("#prefix", "ll"),
		chromedp.WaitVisible(`#results a[data-object="project:llm"]`))
	b.screenshot("search")
	// The results may be drawn again as the type-ahead's queries answer,
	// so the link is clicked by the page itself, whichever node holds it
	// then, not by a node ID taken a moment before.
	eval[bool](b, "open the result", `(document.querySelector('#results a[data-object="project:llm"]').click(), true)`)
	b.do("open the result", chromedp.WaitVisible("main table tbody tr:not([hidden])"))

	// Resource: who can access project:llm, with paths drawn as links.
	rows := b.text("main table tbody")
	for _, want := range []string{"user:erin", "through a parent", "2099-01-01T00:00:00Z", "conditional (needs source_ip)"} {
		if !strings.Contains(rows, want) {
			t.Fatalf("who can access project:llm lacks %q:\n%s", want, rows)
		}
	}
	if soon := eval[int](b, "ending soon", `[...document.querySelectorAll('tr.soon')].filter(r => r.textContent.includes('user:zoe')).length`); soon == 0 {
		t.Fatal("an access ending in three days is not highlighted")
	}
	b.do("show a path", chromedp.Click("main table tbody tr:nth-child(2) button"),
		chromedp.WaitVisible("tr:not([hidden]) .pathview svg a"))
	b.screenshot("resource")
	b.screenshot("resource-view")
	hop := eval[string](b, "path hop link", `document.querySelector('.pathview svg a').getAttribute('href')`)
	if !strings.HasPrefix(hop, "/ui/") {
		t.Fatalf("a path hop links to %q, want an explorer page", hop)
	}

	// Subject: what an agent can access, and whom it acts for.
	b.open("/ui/subject/agent:bobs_assistant")
	b.do("subject tables", chromedp.WaitVisible("main table tbody tr:not([hidden])"))
	if got := b.text("main"); !strings.Contains(got, "principal") || !strings.Contains(got, "user:bob") {
		t.Fatalf("the agent's page does not say whom it acts for:\n%s", got)
	}
	b.screenshot("subject")

	// Why not: a denied pair explained.
	b.open("/ui/whynot?resource=model:llm_weights&permission=read&subject=user:mallory")
	b.do("denial", chromedp.WaitVisible("#denial li"))
	if got := b.text("#answer"); !strings.Contains(got, "no permission") {
		t.Fatalf("why-not answer %q, want no permission", got)
	}
	b.screenshot("whynot")

	// Audit: filtered by resource; the reason renders as text.
	b.open("/ui/audit?resource=project:llm&label=ticket%3DSEC-7")
	b.do("audit rows", chromedp.WaitVisible("#audit tbody tr"))
	if got := b.text("#audit tbody"); !strings.Contains(got, xssReason) || !strings.Contains(got, "ticket=SEC-7") {
		t.Fatalf("audit rows do not show the reason as text:\n%s", got)
	}
	injected := eval[string](b, "inert markup", `String(document.querySelectorAll('main img').length) + '/' + String(window.__pwned)`)
	if injected != "0/undefined" {
		t.Fatalf("a reason carrying markup became markup: images/pwned = %s", injected)
	}
	b.screenshot("audit")

	// Expiring: the page answers.
	b.open("/ui/expiring?days=36500")
	b.do("expiring", chromedp.WaitVisible("main section h2"))
	b.screenshot("expiring")

	// Keyboard and labels: every control on every page is named, and Tab
	// moves focus to the navigation.
	for _, page := range []string{"/ui/", "/ui/whynot", "/ui/audit", "/ui/expiring", "/ui/resource/project:llm", "/ui/subject/user:bob"} {
		b.open(page)
		bad := eval[[]string](b, "labels on "+page, unlabelledControls)
		if len(bad) > 0 {
			t.Fatalf("%s has controls without a label: %q", page, bad)
		}
	}
	b.do("tab", chromedp.KeyEvent("\t"))
	focused := eval[string](b, "focus", `document.activeElement.tagName + ' ' + document.activeElement.textContent`)
	if !strings.HasPrefix(focused, "A ") {
		t.Fatalf("Tab focused %q, want a link", focused)
	}

	// Signing out forgets the token.
	b.do("sign out", chromedp.Click("#signout"), chromedp.WaitVisible("#token"))
	token = eval[string](b, "token after sign-out", `String(sessionStorage.getItem('pemba.token'))`)
	if token != "null" {
		t.Fatalf("token after sign-out = %q", token)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		t.Fatalf("JavaScript errors: %q", b.errors)
	}
}

// TestExplorerHeaders: the explorer's pages carry a strict
// Content-Security-Policy and no CORS grant, other origins get no access
// to the API, and --ui=false removes it.
func TestExplorerHeaders(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	resp, err := s.httpClient().Get(s.httpURL() + "/ui/resource/document:x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("explorer headers too permissive: %v", resp.Header)
	}
	req, _ := http.NewRequest(http.MethodOptions, s.httpURL()+"/v1/explorer/whoami", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err = s.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("a preflight from another origin is granted %q", got)
	}

	off := startServer(t, "--datastore", "memory", "--ui=false")
	resp, err = off.httpClient().Get(off.httpURL() + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("--ui=false: /ui/ answers %d, want 404", resp.StatusCode)
	}
}
