package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// accessSchema grants through a group whose membership can expire, and
// through a wildcard with an exception.
const accessSchema = `use expiration

definition user {}
definition group {
  relation member: user | user with expiration
}
definition document {
  relation viewer: user | user:* | group#member
  relation banned: user
  permission view = viewer - banned
}`

// writeAccessSchema stores accessSchema with the CLI and returns the
// zookie it was written at.
func writeAccessSchema(t *testing.T, s *server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "schema.zed")
	if err := os.WriteFile(path, []byte(accessSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	return lastZookie(s.mustCLI("schema", "write", path).stderr)
}

// wantOutput fails unless the CLI's stdout is exactly want.
func wantOutput(t *testing.T, r cliResult, want string, args ...string) {
	t.Helper()
	if r.code != 0 || r.stdout != want {
		t.Errorf("pemba %s: exit %d\n%s%s\nwant\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr, want)
	}
}

// TestAccessAnalysis: dana views the plan through group eng until her
// membership expires, every user but bob views the public document, and
// alice's direct grant is revoked; `pemba access who`, `what`,
// `expiring` and `diff` show each access, how it is held, when it ends
// and what changed, as tables, CSV and JSON; bad input exits 2 naming
// the field.
func TestAccessAnalysis(t *testing.T) {
	for _, kind := range []string{"memory", "embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			if testing.Short() && kind != "memory" {
				t.Skip("-short: memory datastore only")
			}
			s := startServer(t, datastoreArgs(t, kind)...)
			start := writeAccessSchema(t, s)
			expires := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
			s.mustCLI("relationship", "touch", "document:plan", "viewer", "group:eng#member", "--reason", "eng may read the plan")
			s.mustCLI("relationship", "touch", "group:eng", "member", "user:dana", "--expiration", expires, "--reason", "joined eng")
			s.mustCLI("relationship", "touch", "document:pub", "viewer", "user:*")
			s.mustCLI("relationship", "touch", "document:pub", "banned", "user:bob")
			granted := lastZookie(s.mustCLI("relationship", "touch", "document:plan", "viewer", "user:alice").stderr)

			args := []string{"access", "who", "document:plan", "view"}
			wantOutput(t, s.cli("", args...), ""+
				"PERMISSION  SUBJECT     HOLDING  ENDS                  PATH\n"+
				"view        user:alice  direct   -                     user:alice → document:plan#viewer → document:plan#view\n"+
				"view        user:dana   group    "+expires+"  user:dana → group:eng#member → document:plan#viewer → document:plan#view\n", args...)
			args = []string{"access", "who", "document:pub", "--format", "csv"}
			wantOutput(t, s.cli("", args...), ""+
				"resource,permission,subject,excluded,permissionship,missing_context,holding,ends_at,path\n"+
				"document:pub,view,user:*,bob,has_permission,,wildcard,,user:* → document:pub#viewer → document:pub#view\n", args...)

			args = []string{"access", "what", "user:dana", "--type", "document"}
			wantOutput(t, s.cli("", args...), ""+
				"RESOURCE       PERMISSION  HOLDING   ENDS                  PATH\n"+
				"document:plan  view        group     "+expires+"  user:dana → group:eng#member → document:plan#viewer → document:plan#view\n"+
				"document:pub   view        wildcard  -                     user:dana → document:pub#viewer → document:pub#view\n", args...)
			if r := s.mustCLI("access", "what", "user:dana", "--json", "--limit", "1"); strings.Count(r.stdout, "\n") != 1 ||
				!strings.Contains(r.stdout, `"holdings":["HOLDING_GROUP"]`) || !strings.Contains(r.stdout, `"cursor":`) {
				t.Errorf("access what --json --limit 1:\n%s", r.stdout)
			}

			args = []string{"access", "expiring", "--within", "7d"}
			wantOutput(t, s.cli("", args...), ""+
				"EXPIRES               RELATIONSHIP\n"+
				expires+"  group:eng#member@user:dana\n"+
				"\n"+
				"ENDS                  RESOURCE       PERMISSION  SUBJECT    HOLDING  PATH\n"+
				expires+"  document:plan  view        user:dana  group    user:dana → group:eng#member → document:plan#viewer → document:plan#view\n"+
				expires+"  group:eng      member      user:dana  direct   user:dana → group:eng#member\n", args...)
			args = []string{"access", "expiring", "--within", "48h"}
			wantOutput(t, s.cli("", args...), "nothing expires in the window\n", args...)

			s.mustCLI("relationship", "delete", "document:plan", "viewer", "user:alice", "--reason", "offboarding")
			args = []string{"access", "diff", "user:dana", "--from", start, "--type", "document"}
			wantOutput(t, s.cli("", args...), ""+
				"CHANGE  RESOURCE       PERMISSION  HOLDING   CAUSES\n"+
				`+       document:plan  view        group     +document:plan#viewer@group:eng#member by tester "eng may read the plan"; `+
				`+group:eng#member@user:dana[expiration:`+expires+`] by tester "joined eng"`+"\n"+
				"+       document:pub   view        wildcard  +document:pub#viewer@user:* by tester\n", args...)
			args = []string{"access", "diff", "user:alice", "--from", granted}
			r := s.cli("", args...)
			wantOutput(t, r, ""+
				"CHANGE  RESOURCE       PERMISSION  HOLDING  CAUSES\n"+
				`-       document:plan  view        direct   -document:plan#viewer@user:alice by tester "offboarding"`+"\n", args...)
			if !strings.Contains(r.stderr, "from: "+granted+"\n") {
				t.Errorf("access diff: stderr %q does not name the from zookie", r.stderr)
			}
			// An empty answer still names the revisions compared.
			args = []string{"access", "diff", "user:nobody", "--from", granted}
			if r := s.cli("", args...); r.code != 0 || r.stdout != "no change\n" || !strings.Contains(r.stderr, "from: "+granted+"\nto: ") {
				t.Errorf("access diff user:nobody: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			// A minute ago the datastore was empty: alice has gained only
			// what she still holds.
			args = []string{"access", "diff", "user:alice", "--from", "1m"}
			if r := s.cli("", args...); r.code != 0 || !strings.Contains(r.stdout, "+       document:pub") || strings.Contains(r.stdout, "document:plan") {
				t.Errorf("access diff --from 1m: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}

			for _, c := range []struct {
				args []string
				want []string
			}{
				{[]string{"access", "who", "document:plan", "veiw"}, []string{`access who: invalid argument: permissions: definition "document" has no permission or relation "veiw"`}},
				{[]string{"access", "what", "robot:r2"}, []string{`access what: invalid argument: subject.object.type: type "robot" is not defined`}},
				{[]string{"access", "expiring", "--within", "0s"}, []string{"access expiring: invalid argument: within: required: a positive duration"}},
				{[]string{"access", "expiring", "--within", "400d"}, []string{"access expiring: invalid argument: within: 9600h0m0s exceeds the limit of 366 days"}},
				{[]string{"access", "diff", "user:dana", "--from", "1m", "--to", "2m"}, []string{"access diff: invalid argument: from_time: ", "is after the later end"}},
				{[]string{"access", "diff", "user:dana", "--from", "garbage"}, []string{"access diff: invalid argument: from_zookie:"}},
				{[]string{"access", "who", "document:plan", "--format", "yaml"}, []string{`access who: --format "yaml": want table, csv or json`}},
			} {
				r := s.cli("", c.args...)
				for _, want := range c.want {
					if r.code != 2 || !strings.Contains(r.stderr, want) {
						t.Errorf("pemba %s: exit %d, stderr %q; want 2 and %q", strings.Join(c.args, " "), r.code, r.stderr, want)
					}
				}
				if strings.Contains(r.stdout, "nothing expires") || strings.Contains(r.stdout, "no access") {
					t.Errorf("pemba %s: a failed command printed an empty answer: %q", strings.Join(c.args, " "), r.stdout)
				}
			}
		})
	}
}

// TestAccessDiffCollected: a diff from a zookie whose revision garbage
// collection removed is refused as FAILED_PRECONDITION naming the field.
func TestAccessDiffCollected(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--gc-window", "1s", "--gc-interval", "100ms")
	old := writeAccessSchema(t, s)
	s.mustCLI("relationship", "touch", "document:plan", "viewer", "user:alice")
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.cli("", "access", "diff", "user:alice", "--from", old)
		if r.code == 2 && strings.Contains(r.stderr, "access diff: failed precondition: from_zookie: ") &&
			strings.Contains(r.stderr, "garbage-collected") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("access diff from a collected revision: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
