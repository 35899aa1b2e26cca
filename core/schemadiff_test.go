package core

import (
	"context"
	"strings"
	"testing"

	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

func compile(t *testing.T, text string) *schema.Schema {
	t.Helper()
	if text == "" {
		return nil
	}
	sch, err := schema.Compile("test", text)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func formatChanges(changes []storage.SchemaChange) string {
	var b strings.Builder
	for _, c := range changes {
		sign := "-"
		if c.Added {
			sign = "+"
		}
		b.WriteString(sign + c.Kind + " " + c.Name)
		if c.Detail != "" {
			b.WriteString(" (" + c.Detail + ")")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestSchemaChanges(t *testing.T) {
	const base = `definition user {}
definition group {
  relation member: user
}
caveat on_network(ip ipaddress, cidr string) {
  ip.in_cidr(cidr)
}
definition document {
  relation owner: user
  relation viewer: user
  relation editor: user
  permission view = viewer + owner
  permission edit = editor
}`
	for _, c := range []struct {
		name       string
		prev, next string
		want       string
	}{
		{"first schema", "", "definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}",
			"+definition doc\n+relation doc#viewer\n+permission doc#view\n+definition user\n"},
		{"no change", base, base, ""},
		{"everything", base, `use expiration
definition user {}
definition team {
  relation member: user
}
caveat on_network(ip ipaddress, cidrs list<string>) {
  ip.in_cidr(cidrs[0])
}
caveat weekday(day string) { day != "sunday" }
definition document {
  relation viewer: user | team#member | user with expiration
  relation editor: user
  relation edit: user
  permission view = viewer + editor
  permission owner = editor
  permission comment = view
}`, `+definition team
+relation team#member
-definition group
-relation group#member
+caveat weekday
-caveat on_network
+caveat on_network (caveat on_network(ip ipaddress, cidrs list<string>) { ip.in_cidr(cidrs[0]) })
-relation document#viewer
+relation document#viewer (relation viewer: user | team#member | user with expiration)
-relation document#owner
+permission document#owner (permission owner = editor)
-permission document#edit
+relation document#edit (relation edit: user)
+permission document#comment
-permission document#view
+permission document#view (permission view = viewer + editor)
`},
	} {
		got := formatChanges(SchemaChanges(compile(t, c.prev), compile(t, c.next)))
		if got != c.want {
			t.Errorf("%s:\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

// TestWriteSchemaRecordsDiff: a schema write's audit entry carries what
// it changed against the schema it replaced.
func TestWriteSchemaRecordsDiff(t *testing.T) {
	w := newWriter(t, 10) // writes doc#viewer: user
	ctx := context.Background()
	text := "definition user {}\ndefinition doc {\n relation viewer: user\n relation owner: user\n}"
	rev, err := w.WriteSchema(ctx, text, compile(t, text), storage.WriteMetadata{Actor: "admin", Reason: "owners",
		Labels: labels("ticket", "SEC-1")})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := w.engine.AuditEntry(ctx, rev)
	if err != nil || !ok {
		t.Fatalf("audit entry of revision %d: %v %v", rev, ok, err)
	}
	e, err := auditlog.Decode(raw.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatChanges(e.Schema); got != "+relation doc#owner\n" {
		t.Errorf("recorded diff:\n%s", got)
	}
	if e.Kind != storage.AuditSchema || e.Metadata.Actor != "admin" || e.Metadata.Reason != "owners" || len(e.Metadata.Labels) != 1 {
		t.Errorf("recorded entry %+v", e)
	}
}

// interleaved is an engine on which another writer commits a schema just
// before the first schema write through it: the race of two servers
// writing schemas at once, made deterministic.
type interleaved struct {
	storage.Engine
	other string // the schema the other writer commits, once
}

func (e *interleaved) WriteSchema(ctx context.Context, w storage.SchemaWrite) (storage.Revision, error) {
	if e.other != "" {
		other := e.other
		e.other = ""
		if _, err := e.Engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: other}}); err != nil {
			return 0, err
		}
	}
	return e.Engine.WriteSchema(ctx, w)
}

// TestWriteSchemaDiffAfterConcurrentWrite: when another schema write
// commits between the diff and the commit, the write is diffed again,
// against the schema it really replaces.
func TestWriteSchemaDiffAfterConcurrentWrite(t *testing.T) {
	w := newWriter(t, 10) // writes doc#viewer: user
	ctx := context.Background()
	w.engine = &interleaved{Engine: w.engine,
		other: "definition user {}\ndefinition doc {\n relation viewer: user\n relation editor: user\n}"}
	text := "definition user {}\ndefinition doc {\n relation viewer: user\n relation editor: user\n relation owner: user\n}"
	rev, err := w.WriteSchema(ctx, text, compile(t, text), storage.WriteMetadata{})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := w.engine.AuditEntry(ctx, rev)
	if err != nil || !ok {
		t.Fatalf("audit entry of revision %d: %v %v", rev, ok, err)
	}
	e, err := auditlog.Decode(raw.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatChanges(e.Schema); got != "+relation doc#owner\n" {
		t.Errorf("recorded diff, against the schema the other writer committed:\n%s", got)
	}
}
