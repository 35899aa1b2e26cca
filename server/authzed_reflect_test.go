package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	authzed "github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/prototext"
)

// reflectSchemaText is the schema the reflection tests write: comments,
// a caveat, subject sets, wildcards, expiration and arrows.
const reflectSchemaText = `use expiration

/** on_tier grants to gold customers. */
caveat on_tier(tier string, limit int) {
    tier == "gold"
}

definition user {}

// A team of users.
definition team {
    relation member: user | team#member
}

definition folder {
    relation viewer: user
    permission view = viewer
}

/** A document. */
definition document {
    // Its folder.
    relation parent: folder
    relation viewer: user | user:* | team#member | user with on_tier | user with expiration
    relation owner: user
    relation banned: user
    // Who may read it.
    permission view = (viewer + owner + parent->view) - banned
    permission edit = owner
}
`

// writeReflectSchema writes reflectSchemaText and returns its token.
func writeReflectSchema(t *testing.T, c *authzed.Client) *v1.ZedToken {
	t.Helper()
	resp, err := c.WriteSchema(context.Background(), &v1.WriteSchemaRequest{Schema: reflectSchemaText})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetWrittenAt()
}

// reflectionText prints a ReflectSchema answer one element a line.
func reflectionText(resp *v1.ReflectSchemaResponse) string {
	var b strings.Builder
	for _, d := range resp.GetDefinitions() {
		fmt.Fprintf(&b, "definition %s %q\n", d.GetName(), d.GetComment())
		for _, r := range d.GetRelations() {
			var types []string
			for _, ty := range r.GetSubjectTypes() {
				types = append(types, typeRefText(ty))
			}
			fmt.Fprintf(&b, "  relation %s.%s %q: %s\n", r.GetParentDefinitionName(), r.GetName(), r.GetComment(), strings.Join(types, " | "))
		}
		for _, p := range d.GetPermissions() {
			fmt.Fprintf(&b, "  permission %s.%s %q\n", p.GetParentDefinitionName(), p.GetName(), p.GetComment())
		}
	}
	for _, c := range resp.GetCaveats() {
		var params []string
		for _, p := range c.GetParameters() {
			params = append(params, p.GetParentCaveatName()+"."+p.GetName()+" "+p.GetType())
		}
		fmt.Fprintf(&b, "caveat %s %q (%s) %q\n", c.GetName(), c.GetComment(), strings.Join(params, ", "), strings.TrimSpace(c.GetExpression()))
	}
	return b.String()
}

func typeRefText(ty *v1.ReflectionTypeReference) string {
	s := ty.GetSubjectDefinitionName()
	switch {
	case ty.GetIsPublicWildcard():
		s += ":*"
	case ty.GetOptionalRelationName() != "":
		s += "#" + ty.GetOptionalRelationName()
	case !ty.GetIsTerminalSubject():
		s += " (not terminal)"
	}
	if ty.GetOptionalCaveatName() != "" {
		s += " with " + ty.GetOptionalCaveatName()
	}
	return s
}

func TestAuthzedReflectSchema(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()

	empty, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{})
	if err != nil || len(empty.GetDefinitions())+len(empty.GetCaveats()) > 0 || empty.GetReadAt().GetToken() == "" {
		t.Fatalf("ReflectSchema before a schema: %v %v", empty, err)
	}
	tok := writeReflectSchema(t, c)

	resp, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: azFresh(tok)})
	if err != nil {
		t.Fatal(err)
	}
	want := `definition user ""
definition team "// A team of users."
  relation team.member "": user | team#member
definition folder ""
  relation folder.viewer "": user
  permission folder.view ""
definition document "/** A document. */"
  relation document.parent "// Its folder.": folder
  relation document.viewer "": user | user:* | team#member | user with on_tier | user
  relation document.owner "": user
  relation document.banned "": user
  permission document.view "// Who may read it."
  permission document.edit ""
caveat on_tier "/** on_tier grants to gold customers. */" (on_tier.tier string, on_tier.limit int) "tier == \"gold\""
`
	if got := reflectionText(resp); got != want {
		t.Errorf("ReflectSchema:\n%s\nwant:\n%s", got, want)
	}
	if resp.GetReadAt().GetToken() == "" {
		t.Error("ReflectSchema: no read_at")
	}

	for _, tc := range []struct {
		name    string
		filters []*v1.ReflectionSchemaFilter
		want    string
	}{
		{"definition prefix", []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "fo"}},
			"definition folder \"\"\n  relation folder.viewer \"\": user\n  permission folder.view \"\"\n"},
		{"caveat prefix", []*v1.ReflectionSchemaFilter{{OptionalCaveatNameFilter: "on_"}},
			"caveat on_tier \"/** on_tier grants to gold customers. */\" (on_tier.tier string, on_tier.limit int) \"tier == \\\"gold\\\"\"\n"},
		{"relation prefix", []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "document", OptionalRelationNameFilter: "b"}},
			"definition document \"/** A document. */\"\n  relation document.banned \"\": user\n  permission document.view \"// Who may read it.\"\n  permission document.edit \"\"\n"},
		{"permission prefix", []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "document", OptionalPermissionNameFilter: "ed"}},
			"definition document \"/** A document. */\"\n  relation document.parent \"// Its folder.\": folder\n" +
				"  relation document.viewer \"\": user | user:* | team#member | user with on_tier | user\n" +
				"  relation document.owner \"\": user\n  relation document.banned \"\": user\n  permission document.edit \"\"\n"},
		{"alternatives", []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "us"}, {OptionalDefinitionNameFilter: "te"}},
			"definition user \"\"\ndefinition team \"// A team of users.\"\n  relation team.member \"\": user | team#member\n"},
		{"nothing matches", []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "zzz"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: azFresh(tok), OptionalFilters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := reflectionText(resp); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		filter *v1.ReflectionSchemaFilter
		msg    string
	}{
		{"definition and caveat", &v1.ReflectionSchemaFilter{OptionalDefinitionNameFilter: "d", OptionalCaveatNameFilter: "c"}, "optional_filters[0]"},
		{"relation without definition", &v1.ReflectionSchemaFilter{OptionalRelationNameFilter: "v"}, "needs a definition name filter"},
		{"relation and permission", &v1.ReflectionSchemaFilter{OptionalDefinitionNameFilter: "d", OptionalRelationNameFilter: "v", OptionalPermissionNameFilter: "v"}, "not both"},
	} {
		_, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{OptionalFilters: []*v1.ReflectionSchemaFilter{tc.filter}})
		wantCode(t, tc.name, err, codes.InvalidArgument, tc.msg)
	}
	many := make([]*v1.ReflectionSchemaFilter, maxReflectionFilters+1)
	for i := range many {
		many[i] = &v1.ReflectionSchemaFilter{OptionalDefinitionNameFilter: "d"}
	}
	_, err = c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{OptionalFilters: many})
	wantCode(t, "too many filters", err, codes.InvalidArgument, "optional_filters", "limit of 100")
	_, err = c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: azFresh(&v1.ZedToken{Token: "nonsense"})})
	wantCode(t, "bad token", err, codes.InvalidArgument, "consistency")
}

// TestAuthzedReflectSchemaAtSnapshot checks that reflection reads the
// schema in force at the requested revision.
func TestAuthzedReflectSchemaAtSnapshot(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()
	old := writeReflectSchema(t, c)
	if _, err := c.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: reflectSchemaText + "definition extra {}\n"}); err != nil {
		t.Fatal(err)
	}
	exact := &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: old}}
	at, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: exact, OptionalFilters: []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "extra"}}})
	if err != nil || len(at.GetDefinitions()) != 0 || at.GetReadAt().GetToken() != old.GetToken() {
		t.Fatalf("at the old snapshot: %v %v", at, err)
	}
	full := &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	now, err := c.ReflectSchema(ctx, &v1.ReflectSchemaRequest{Consistency: full, OptionalFilters: []*v1.ReflectionSchemaFilter{{OptionalDefinitionNameFilter: "extra"}}})
	if err != nil || len(now.GetDefinitions()) != 1 {
		t.Fatalf("fully consistent: %v %v", now, err)
	}
	diff, err := c.DiffSchema(ctx, &v1.DiffSchemaRequest{Consistency: exact, ComparisonSchema: reflectSchemaText + "definition extra {}\n"})
	if err != nil || len(diff.GetDiffs()) != 1 || diff.GetDiffs()[0].GetDefinitionAdded().GetName() != "extra" {
		t.Fatalf("diff at the old snapshot: %v %v", diff, err)
	}
}

// diffText prints each diff as its kind and its element in text form.
func diffText(diffs []*v1.ReflectionSchemaDiff) string {
	var b strings.Builder
	for _, d := range diffs {
		b.WriteString(strings.Join(strings.Fields(prototext.Format(d)), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestAuthzedDiffSchema(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()

	first, err := c.DiffSchema(ctx, &v1.DiffSchemaRequest{ComparisonSchema: "definition user {}\ncaveat cav1(a int) { a > 1 }"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := diffText(first.GetDiffs()), "definition_added: { name: \"user\" }\ncaveat_added: { name: \"cav1\" parameters: { name: \"a\" type: \"int\" parent_caveat_name: \"cav1\" } expression: \"a > 1\" }\n"; got != want {
		t.Errorf("diff against no schema:\n%s\nwant:\n%s", got, want)
	}
	tok := writeReflectSchema(t, c)

	same, err := c.DiffSchema(ctx, &v1.DiffSchemaRequest{Consistency: azFresh(tok), ComparisonSchema: reflectSchemaText})
	if err != nil || len(same.GetDiffs()) != 0 || same.GetReadAt().GetToken() == "" {
		t.Fatalf("diff with itself: %v %v", same, err)
	}

	next := strings.NewReplacer(
		"/** on_tier grants to gold customers. */", "// on_tier grants to gold.",
		"caveat on_tier(tier string, limit int) {\n    tier == \"gold\"", "caveat on_tier(tier string, limit uint, region string) {\n    tier == \"gold\" && region == \"eu\"",
		"definition user {}", "definition user {}\n\ndefinition robot {}",
		"// A team of users.\n", "",
		"    relation member: user | team#member", "    relation member: user | team#member | robot",
		"definition folder {\n    relation viewer: user\n    permission view = viewer\n}\n", "",
		// The parent's comment stays, and becomes the viewer's.
		"    relation parent: folder\n", "",
		"| user:* ", "",
		"    relation banned: user\n", "    permission banned = nil\n",
		"(viewer + owner + parent->view) - banned", "viewer + owner",
		"    permission edit = owner", "    // Who may write it.\n    permission edit = owner\n    relation editor: user",
	).Replace(reflectSchemaText)
	resp, err := c.DiffSchema(ctx, &v1.DiffSchemaRequest{Consistency: azFresh(tok), ComparisonSchema: next})
	if err != nil {
		t.Fatal(err)
	}
	want := `definition_added: { name: "robot" }
definition_removed: { name: "folder" relations: { name: "viewer" parent_definition_name: "folder" subject_types: { subject_definition_name: "user" is_terminal_subject: true } } permissions: { name: "view" parent_definition_name: "folder" } }
caveat_parameter_added: { name: "region" type: "string" parent_caveat_name: "on_tier" }
caveat_parameter_type_changed: { parameter: { name: "limit" type: "uint" parent_caveat_name: "on_tier" } previous_type: "int" }
caveat_expr_changed: { name: "on_tier" comment: "// on_tier grants to gold." parameters: { name: "tier" type: "string" parent_caveat_name: "on_tier" } parameters: { name: "limit" type: "uint" parent_caveat_name: "on_tier" } parameters: { name: "region" type: "string" parent_caveat_name: "on_tier" } expression: "tier == \"gold\" && region == \"eu\"" }
relation_added: { name: "editor" parent_definition_name: "document" subject_types: { subject_definition_name: "user" is_terminal_subject: true } }
relation_removed: { name: "parent" comment: "// Its folder." parent_definition_name: "document" subject_types: { subject_definition_name: "folder" is_terminal_subject: true } }
relation_removed: { name: "banned" parent_definition_name: "document" subject_types: { subject_definition_name: "user" is_terminal_subject: true } }
permission_added: { name: "banned" parent_definition_name: "document" }
relation_subject_type_removed: { relation: { name: "viewer" comment: "// Its folder." parent_definition_name: "document" subject_types: { subject_definition_name: "user" is_terminal_subject: true } subject_types: { subject_definition_name: "team" optional_relation_name: "member" } subject_types: { subject_definition_name: "user" optional_caveat_name: "on_tier" is_terminal_subject: true } subject_types: { subject_definition_name: "user" is_terminal_subject: true } } changed_subject_type: { subject_definition_name: "user" is_public_wildcard: true } }
permission_expr_changed: { name: "view" comment: "// Who may read it." parent_definition_name: "document" }
relation_subject_type_added: { relation: { name: "member" parent_definition_name: "team" subject_types: { subject_definition_name: "user" is_terminal_subject: true } subject_types: { subject_definition_name: "team" optional_relation_name: "member" } subject_types: { subject_definition_name: "robot" is_terminal_subject: true } } changed_subject_type: { subject_definition_name: "robot" is_terminal_subject: true } }
caveat_doc_comment_changed: { name: "on_tier" comment: "// on_tier grants to gold." parameters: { name: "tier" type: "string" parent_caveat_name: "on_tier" } parameters: { name: "limit" type: "uint" parent_caveat_name: "on_tier" } parameters: { name: "region" type: "string" parent_caveat_name: "on_tier" } expression: "tier == \"gold\" && region == \"eu\"" }
permission_doc_comment_changed: { name: "edit" comment: "// Who may write it." parent_definition_name: "document" }
relation_doc_comment_changed: { name: "viewer" comment: "// Its folder." parent_definition_name: "document" subject_types: { subject_definition_name: "user" is_terminal_subject: true } subject_types: { subject_definition_name: "team" optional_relation_name: "member" } subject_types: { subject_definition_name: "user" optional_caveat_name: "on_tier" is_terminal_subject: true } subject_types: { subject_definition_name: "user" is_terminal_subject: true } }
definition_doc_comment_changed: { name: "team" relations: { name: "member" parent_definition_name: "team" subject_types: { subject_definition_name: "user" is_terminal_subject: true } subject_types: { subject_definition_name: "team" optional_relation_name: "member" } subject_types: { subject_definition_name: "robot" is_terminal_subject: true } } }
`
	if got := diffText(resp.GetDiffs()); got != want {
		t.Errorf("DiffSchema:\n%s\nwant:\n%s", got, want)
	}

	_, err = c.DiffSchema(ctx, &v1.DiffSchemaRequest{ComparisonSchema: "definition user {"})
	wantCode(t, "bad comparison schema", err, codes.InvalidArgument, "comparison_schema")
	_, err = c.DiffSchema(ctx, &v1.DiffSchemaRequest{})
	wantCode(t, "no comparison schema", err, codes.InvalidArgument, "comparison_schema")
}

// refsText prints relation references as `type#relation`, a permission
// marked with (p).
func refsText(refs []*v1.ReflectionRelationReference) string {
	var out []string
	for _, r := range refs {
		s := r.GetDefinitionName() + "#" + r.GetRelationName()
		if r.GetIsPermission() {
			s += "(p)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestAuthzedComputablePermissionsAndDependentRelations(t *testing.T) {
	srv := serveAuthzedTest(t)
	c := authzedClient(t, srv, testSecret)
	ctx := context.Background()

	_, err := c.ComputablePermissions(ctx, &v1.ComputablePermissionsRequest{DefinitionName: "document", RelationName: "viewer"})
	wantCode(t, "no schema", err, codes.FailedPrecondition)
	tok := writeReflectSchema(t, c)

	for _, tc := range []struct {
		def, rel, prefix, want string
	}{
		{"document", "viewer", "", "document#view(p)"},
		{"document", "parent", "", "document#view(p)"},
		{"folder", "viewer", "", "document#view(p) folder#view(p)"},
		{"folder", "viewer", "fo", "folder#view(p)"},
		{"team", "member", "", "document#view(p) document#viewer"},
		{"user", "", "", "document#banned document#edit(p) document#owner document#view(p) document#viewer folder#view(p) folder#viewer team#member"},
		{"user", "...", "doc", "document#banned document#edit(p) document#owner document#view(p) document#viewer"},
		{"document", "edit", "", ""},
	} {
		resp, err := c.ComputablePermissions(ctx, &v1.ComputablePermissionsRequest{Consistency: azFresh(tok),
			DefinitionName: tc.def, RelationName: tc.rel, OptionalDefinitionNameFilter: tc.prefix})
		if err != nil {
			t.Fatalf("ComputablePermissions %s#%s: %v", tc.def, tc.rel, err)
		}
		if got := refsText(resp.GetPermissions()); got != tc.want || resp.GetReadAt().GetToken() == "" {
			t.Errorf("ComputablePermissions %s#%s (%q): %s, want %s", tc.def, tc.rel, tc.prefix, got, tc.want)
		}
	}
	for _, tc := range []struct{ def, perm, want string }{
		{"document", "view", "document#banned document#owner document#parent document#viewer folder#view(p) folder#viewer team#member"},
		{"document", "edit", "document#owner"},
		{"folder", "view", "folder#viewer"},
	} {
		resp, err := c.DependentRelations(ctx, &v1.DependentRelationsRequest{Consistency: azFresh(tok), DefinitionName: tc.def, PermissionName: tc.perm})
		if err != nil {
			t.Fatalf("DependentRelations %s#%s: %v", tc.def, tc.perm, err)
		}
		if got := refsText(resp.GetRelations()); got != tc.want || resp.GetReadAt().GetToken() == "" {
			t.Errorf("DependentRelations %s#%s: %s, want %s", tc.def, tc.perm, got, tc.want)
		}
	}

	computable := func(def, rel string) error {
		_, err := c.ComputablePermissions(ctx, &v1.ComputablePermissionsRequest{Consistency: azFresh(tok), DefinitionName: def, RelationName: rel})
		return err
	}
	dependent := func(def, perm string) error {
		_, err := c.DependentRelations(ctx, &v1.DependentRelationsRequest{Consistency: azFresh(tok), DefinitionName: def, PermissionName: perm})
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"computable: unknown definition", computable("nope", "viewer"), codes.FailedPrecondition, `definition_name: definition "nope" not found`},
		{"computable: unknown relation", computable("document", "nope"), codes.FailedPrecondition, `relation_name: relation "nope" not found`},
		{"computable: no definition", computable("", "viewer"), codes.InvalidArgument, "definition_name"},
		{"computable: malformed definition", computable("Bad Name", "viewer"), codes.InvalidArgument, "definition_name"},
		{"dependent: unknown definition", dependent("nope", "view"), codes.FailedPrecondition, "definition_name"},
		{"dependent: unknown permission", dependent("document", "nope"), codes.FailedPrecondition, `permission_name: permission "nope" not found`},
		{"dependent: a relation", dependent("document", "viewer"), codes.FailedPrecondition, "is a relation, not a permission"},
		{"dependent: no permission", dependent("document", ""), codes.InvalidArgument, "permission_name"},
	} {
		wantCode(t, tc.name, tc.err, tc.code, tc.msg)
	}
}

// TestSpiceDBHTTPReflection: the reflection RPCs answer on SpiceDB's
// HTTP/JSON paths too.
func TestSpiceDBHTTPReflection(t *testing.T) {
	srv := newHTTPServer(t, nil, func(c *Config) { c.SpiceDBHTTPAddr = "127.0.0.1:0" })
	base := "http://" + srv.SpiceDBHTTPAddr().String()
	for _, step := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/v1/schema/write", `{"schema": "definition user {}\ndefinition document {\n relation viewer: user\n permission view = viewer\n}"}`, 200, `"writtenAt"`},
		{"/v1/schema/reflectschema", `{"consistency": {"fullyConsistent": true}}`, 200, `"subjectDefinitionName":"user"`},
		{"/v1/schema/permissions/computable", `{"consistency": {"fullyConsistent": true}, "definitionName": "document", "relationName": "viewer"}`,
			200, `"relationName":"view","isPermission":true`},
		{"/v1/schema/permissions/dependent", `{"consistency": {"fullyConsistent": true}, "definitionName": "document", "permissionName": "view"}`,
			200, `"relationName":"viewer","isPermission":false`},
		{"/v1/schema/diffschema", `{"consistency": {"fullyConsistent": true}, "comparisonSchema": "definition user {}"}`, 200, `"definitionRemoved"`},
		{"/v1/schema/permissions/dependent", `{"definitionName": "nope", "permissionName": "view"}`, 400, `nope`},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+step.path, strings.NewReader(step.body))
		req.Header.Set("Authorization", "Bearer "+testSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body := strings.ReplaceAll(string(out), " ", ""); resp.StatusCode != step.code || !strings.Contains(body, step.want) {
			t.Fatalf("POST %s: %d %s; want %d containing %s", step.path, resp.StatusCode, out, step.code, step.want)
		}
	}
}
