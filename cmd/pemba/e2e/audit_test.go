package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// writeSchemaFile writes testSchema to a file of t's and stores it with
// the CLI.
func writeSchemaFile(t *testing.T, s *server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schema.zed")
	if err := os.WriteFile(path, []byte(testSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := s.cli("", "schema", "write", path, "--reason", "initial schema"); r.code != 0 {
		t.Fatalf("schema write: %+v", r)
	}
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func (s *server) mustCLI(args ...string) cliResult {
	s.t.Helper()
	r := s.cli("", args...)
	if r.code != 0 {
		s.t.Fatalf("pemba %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// auditLine matches one line of `pemba audit`: a time, then the rest.
var auditLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (.*)$`)

// auditLines returns the lines of `pemba audit` without their times.
func auditLines(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	for line := range strings.Lines(out) {
		m := auditLine.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
		if m == nil {
			t.Fatalf("audit line without a time: %q", line)
		}
		lines = append(lines, m[1])
	}
	return lines
}

// TestAuditTrail: a grant made with labels and a reason, and its revoke,
// stay in the audit log after garbage collection removed them from
// history; `pemba audit` shows both with actor, reason and labels, `check
// --provenance` names who wrote a live grant, `audit verify` finds the
// chain intact, and a watch from a collected time is refused like an old
// zookie.
func TestAuditTrail(t *testing.T) {
	for _, kind := range []string{"memory", "embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			if testing.Short() && kind != "memory" {
				t.Skip("-short: memory datastore only")
			}
			args := datastoreArgs(t, kind)
			// The SQL datastores collect garbage only when asked; the
			// embedded engine's collector runs every --gc-interval.
			collects := kind != "postgres"
			if collects {
				args = append(args, "--gc-window", "1s", "--gc-interval", "100ms")
			}
			s := startServer(t, args...)
			writeSchemaFile(t, s)
			grant := s.mustCLI("relationship", "create", "document:x", "viewer", "user:alice",
				"--label", "approver=bob", "--label", "ticket=SEC-42", "--reason", "SEC-42 approved by bob")
			s.mustCLI("relationship", "touch", "document:x", "viewer", "user:bob", "--reason", "onboarding", "--label", "ticket=SEC-43")
			s.mustCLI("relationship", "delete", "document:x", "viewer", "user:alice", "--reason", "offboarding", "--label", "ticket=SEC-44")

			if collects {
				// Wait for the collector: the grant's revision becomes
				// unreadable once it falls out of the 1s window.
				zookie := lastZookie(grant.stderr)
				deadline := time.Now().Add(30 * time.Second)
				for {
					r := s.cli("", "relationship", "read", "document:x", "--consistency", "exact:"+zookie)
					if r.code != 0 && strings.Contains(r.stderr, "garbage-collected") {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the grant's revision was never collected: %+v", r)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}

			got := auditLines(t, s.mustCLI("audit", "--resource", "document:x").stdout)
			want := []string{
				`tester  +document:x#viewer@user:alice  "SEC-42 approved by bob"  approver=bob ticket=SEC-42`,
				`tester  +document:x#viewer@user:bob  "onboarding"  ticket=SEC-43`,
				`tester  -document:x#viewer@user:alice  "offboarding"  ticket=SEC-44`,
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("audit --resource document:x:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			got = auditLines(t, s.mustCLI("audit", "--subject", "user:alice", "--label", "ticket=SEC-42").stdout)
			if len(got) != 1 || got[0] != want[0] {
				t.Errorf("audit --subject user:alice --label ticket=SEC-42: %q", got)
			}
			got = auditLines(t, s.mustCLI("audit", "--resource", "document", "--newest-first", "--limit", "1").stdout)
			if len(got) != 1 || got[0] != want[2] {
				t.Errorf("audit --newest-first --limit 1: %q", got)
			}
			got = auditLines(t, s.mustCLI("audit", "--kind", "schema", "--limit", "2").stdout)
			if len(got) != 2 || got[0] != `tester  schema +definition document  "initial schema"` {
				t.Errorf("audit --kind schema: %q", got)
			}
			for line := range strings.Lines(s.mustCLI("audit", "--actor", "tester", "--json").stdout) {
				var msg struct {
					Event  map[string]any `json:"event"`
					Cursor string         `json:"cursor"`
				}
				if err := json.Unmarshal([]byte(line), &msg); err != nil || msg.Event["actor"] != "tester" || msg.Cursor == "" {
					t.Errorf("audit --json line %q: %v", line, err)
				}
			}

			check := s.cli("", "check", "document:x", "view", "user:bob", "--provenance")
			if check.code != 0 || !regexp.MustCompile(`(?m)^\s+written \S+Z by tester  "onboarding"  ticket=SEC-43  \(revision [A-Za-z0-9_-]+\)$`).MatchString(check.stdout) {
				t.Errorf("check --provenance: exit %d\n%s%s", check.code, check.stdout, check.stderr)
			}

			verify := s.mustCLI("audit", "verify")
			head := regexp.MustCompile(`(?m)^head: (\d+:[0-9a-f]{64})$`).FindStringSubmatch(verify.stdout)
			if !strings.Contains(verify.stdout, "checked 4 entries, revisions 1 to 4\n") || !strings.HasSuffix(verify.stdout, "intact\n") || head == nil {
				t.Fatalf("audit verify:\n%s", verify.stdout)
			}
			if r := s.cli("", "audit", "verify", "--anchor", head[1]); r.code != 0 {
				t.Errorf("audit verify --anchor %s: %+v", head[1], r)
			}

			watch := s.cli("", "watch", "--since", "1h", "--timeout", "2s")
			if collects {
				if watch.code != 2 || !strings.Contains(watch.stderr, "garbage-collected") {
					t.Errorf("watch --since 1h after collection: %+v", watch)
				}
			} else if watch.code != 0 || strings.Count(watch.stdout, "by tester") != 4 || !strings.Contains(watch.stdout, "approver=bob ticket=SEC-42") {
				t.Errorf("watch --since 1h: %+v", watch)
			}
		})
	}
}

// TestAuditFlags: --audit=false stores no log and says so to a reader;
// --audit-retention trims entries older than it.
func TestAuditFlags(t *testing.T) {
	off := startServer(t, "--datastore", "memory", "--audit=false")
	writeSchemaFile(t, off)
	for _, args := range [][]string{{"audit"}, {"audit", "verify"}, {"check", "document:x", "view", "user:bob", "--provenance"}} {
		r := off.cli("", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "failed precondition: ") || !strings.Contains(r.stderr, "audit log is disabled") {
			t.Errorf("pemba %s with --audit=false: %+v", strings.Join(args, " "), r)
		}
	}

	kept := startServer(t, "--datastore", "memory", "--audit-retention", "1s", "--gc-interval", "100ms")
	writeSchemaFile(t, kept)
	kept.mustCLI("relationship", "touch", "document:x", "viewer", "user:bob")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := kept.mustCLI("audit", "verify")
		if strings.HasPrefix(r.stdout, "checked 0 entries\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("--audit-retention 1s never trimmed the log:\n%s", r.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := kept.mustCLI("audit"); r.stdout != "" {
		t.Errorf("audit after the retention: %q", r.stdout)
	}
	if r := startCLIOnly(t, "serve", "--datastore", "memory", "--audit-retention", "-1s", "--insecure-no-auth"); r.code != 2 ||
		!strings.Contains(r.stderr, "--audit-retention -1s") {
		t.Errorf("serve --audit-retention -1s: %+v", r)
	}
}

// startCLIOnly runs the CLI without a server.
func startCLIOnly(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runCLIIn(t, t.TempDir(), nil, "", args...)
}
