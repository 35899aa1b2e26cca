package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// TestExportImportRoundTrip: relationships imported from a file come out
// of export unchanged, and `export | import` into a second server (another
// datastore kind) reproduces the same export.
func TestExportImportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	schemaFile := filepath.Join(dir, "schema.zed")
	if err := os.WriteFile(schemaFile, []byte("use expiration\ncaveat weekday(day string) { day != \"sunday\" }\n"+
		strings.Replace(testSchema, "relation viewer: user | group#member", "relation viewer: user | group#member | user:* | user with weekday | user with expiration", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 2500 {
		switch i % 5 {
		case 0:
			lines = append(lines, fmt.Sprintf("group:g%d#member@user:u%d", i%40, i))
		case 1:
			lines = append(lines, fmt.Sprintf("document:d%d#viewer@group:g%d#member", i, i%40))
		case 2:
			lines = append(lines, fmt.Sprintf(`document:d%d#viewer@user:u%d[weekday:{"day":"monday"}]`, i, i))
		case 3:
			lines = append(lines, fmt.Sprintf("document:d%d#viewer@user:u%d[expiration:2099-06-01T12:00:00Z]", i, i))
		default:
			lines = append(lines, fmt.Sprintf("document:d%d#viewer@user:*", i))
		}
	}
	relsFile := filepath.Join(dir, "rels.txt")
	if err := os.WriteFile(relsFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	a := startServer(t, datastoreArgs(t, "embedded")...)
	b := startServer(t, "--datastore", "memory")
	for _, s := range []*server{a, b} {
		if r := s.cli("", "schema", "write", schemaFile); r.code != 0 {
			t.Fatalf("schema write: %+v", r)
		}
	}
	if r := a.cli("", "import", relsFile); r.code != 0 || !strings.Contains(r.stdout, "imported 2500") {
		t.Fatalf("import: %+v", r)
	}
	exportA := a.cli("", "export")
	if exportA.code != 0 {
		t.Fatalf("export: %+v", exportA)
	}
	got := strings.Split(strings.TrimSpace(exportA.stdout), "\n")
	want := slices.Clone(lines)
	slices.Sort(want)
	gotSorted := slices.Clone(got)
	slices.Sort(gotSorted)
	if !slices.Equal(gotSorted, want) {
		t.Fatalf("export differs from the imported file: %d lines vs %d", len(got), len(want))
	}

	if r := b.cli(exportA.stdout, "import", "-"); r.code != 0 {
		t.Fatalf("export | import: %+v", r)
	}
	exportB := b.cli("", "export")
	if exportB.stdout != exportA.stdout {
		t.Errorf("export after export | import differs")
	}

	// A resumed export continues at the same revision after its cursor.
	stream, err := a.client(tokenSecret).rels.ExportRelationships(context.Background(), &pb.ExportRelationshipsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// A write after the first page is not in the resumed export.
	if r := a.cli("", "relationship", "touch", "document:zzz", "viewer", "user:late"); r.code != 0 {
		t.Fatalf("touch: %+v", r)
	}
	rest := a.cli("", "export", "--cursor", first.GetCursor())
	var resumed []string
	for _, r := range first.GetRelationships() {
		resumed = append(resumed, relationshipFromWire(r).String())
	}
	resumed = append(resumed, strings.Split(strings.TrimSpace(rest.stdout), "\n")...)
	if !slices.Equal(resumed, got) {
		t.Errorf("resumed export: %d lines, want the original %d", len(resumed), len(got))
	}
}

// TestLookupResourcesPages: the CLI follows cursors past the server's page size.
func TestLookupResourcesPages(t *testing.T) {
	s := startServer(t, "--datastore", "memory", "--lookup-page-size", "7")
	c := setup(t, s)
	var updates []*pb.RelationshipUpdate
	for i := range 30 {
		updates = append(updates, touch(rel("document", fmt.Sprintf("d%02d", i), "viewer", "user", "alice")))
	}
	if _, err := c.rels.WriteRelationships(context.Background(), &pb.WriteRelationshipsRequest{Updates: updates}); err != nil {
		t.Fatal(err)
	}
	r := s.cli("", "permission", "lookup-resources", "document", "view", "user:alice")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	slices.Sort(lines)
	lines = slices.Compact(lines)
	if r.code != 0 || len(lines) != 30 {
		t.Errorf("lookup-resources over pages of 7: exit %d, %d distinct resources, want 30\n%s", r.code, len(lines), r.stderr)
	}
}

// TestImportResume: an import that fails part-way reports how many
// relationships were committed, and --skip resumes after them.
func TestImportResume(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	setup(t, s)
	dir := t.TempDir()
	var lines []string
	for i := range 1200 {
		lines = append(lines, fmt.Sprintf("document:d%d#viewer@user:u%d", i, i))
	}
	lines[1100] = "document:d1100#viewr@user:u1100" // a typo in the second batch
	file := filepath.Join(dir, "rels.txt")
	write := func() {
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write()
	r := s.cli("", "import", file)
	if r.code != 2 || !strings.Contains(r.stderr, "resume with --skip 1000") || !strings.Contains(r.stderr, "relationships[1100].relation") {
		t.Fatalf("failed import: exit %d, stderr %q", r.code, r.stderr)
	}
	lines[1100] = "document:d1100#viewer@user:u1100"
	write()
	if r := s.cli("", "import", "--skip", "1000", file); r.code != 0 || !strings.Contains(r.stdout, "imported 200") {
		t.Fatalf("resumed import: %+v", r)
	}
	exp := s.cli("", "export")
	if n := strings.Count(exp.stdout, "\n"); n != 1200 {
		t.Errorf("after the resumed import: %d relationships, want 1200", n)
	}
}

// TestWatchCLI: pemba watch --since replays the changes after a zookie
// with their actor and reason, and ends at --timeout.
func TestWatchCLI(t *testing.T) {
	s := startServer(t, "--datastore", "memory")
	dir := t.TempDir()
	schemaFile := filepath.Join(dir, "schema.zed")
	if err := os.WriteFile(schemaFile, []byte(testSchema), 0o644); err != nil {
		t.Fatal(err)
	}
	first := s.cli("", "schema", "write", schemaFile)
	since := lastZookie(first.stderr)
	if since == "" {
		t.Fatalf("schema write printed no zookie: %+v", first)
	}
	s.cli("", "relationship", "touch", "document:d", "viewer", "user:alice", "--reason", "grant")
	s.cli("", "relationship", "delete", "document:d", "viewer", "user:alice", "--reason", "revoke")
	r := s.cli("", "watch", "--since", since, "--timeout", "2s")
	out := timeField.ReplaceAllString(r.stdout, "TIME")
	z := regexp.MustCompile(`(?m)^[A-Za-z0-9_-]+ `)
	out = z.ReplaceAllString(out, "ZOOKIE ")
	want := "ZOOKIE TIME by tester (grant)\n  + document:d#viewer@user:alice\nZOOKIE TIME by tester (revoke)\n  - document:d#viewer@user:alice\n"
	if r.code != 0 || out != want {
		t.Errorf("watch: exit %d\n%s\nwant\n%s\nstderr %s", r.code, out, want, r.stderr)
	}
}
