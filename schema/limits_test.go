package schema

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pembadb/pemba/graph"
)

// permissionSchema returns a schema whose document#view is expr.
func permissionSchema(expr string) string {
	return "definition user {}\ndefinition document {\n\trelation viewer: user\n\tpermission view = " + expr + "\n}\n"
}

// chain returns n copies of term joined by op: `viewer + viewer + ...`.
func chain(n int, op, term string) string {
	var b strings.Builder
	b.Grow(n * (len(op) + len(term)))
	for i := range n {
		if i > 0 {
			b.WriteString(op)
		}
		b.WriteString(term)
	}
	return b.String()
}

// caveatSchema returns a schema with one caveat `c(a int, m any)` whose
// body is body.
func caveatSchema(body string) string {
	return "caveat cav(a int, m any) {\n\t" + body + "\n}\n"
}

// compileErrors compiles src and returns its errors, failing the test if
// it compiles or fails with something other than an *ErrorList.
func compileErrors(t *testing.T, src string) ErrorList {
	t.Helper()
	_, err := Compile("limits.zed", src)
	if err == nil {
		t.Fatal("compiled without error")
	}
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T is not an *ErrorList: %v", err, err)
	}
	return *list
}

// TestLimits checks that input past each limit fails with one error naming
// the limit at the place it was crossed, and that input at the limit
// compiles. Before the limits, the deep inputs overflowed the stack and
// killed the process.
func TestLimits(t *testing.T) {
	deepParens := func(n int) string {
		return permissionSchema(strings.Repeat("(", n) + "viewer" + strings.Repeat(")", n))
	}
	deepType := func(n int) string {
		return "caveat cav(a " + strings.Repeat("list<", n) + "int" + strings.Repeat(">", n) + ") {\n\ttrue\n}\n"
	}
	tooLong := func(src string) string {
		return fmt.Sprintf("schema is %d bytes, over the limit of 1048576 bytes", len(src))
	}
	twoMB := permissionSchema(strings.Repeat("(", 2<<20))
	longSchema := permissionSchema("viewer") + strings.Repeat("\n", MaxSchemaBytes)
	longCaveat := "a > 0" + strings.Repeat(" || a > 0", MaxCaveatExpressionBytes/9)
	hugeCaveat := strings.Repeat("(", MaxSchemaBytes-100)
	const exprColumn = 20 // of the first term in permissionSchema
	tests := []struct {
		name    string
		src     string
		wantErr string // "" when the input must compile
		wantPos Position
	}{
		{"parentheses at the limit", deepParens(MaxNestingDepth), "", Position{}},
		{"parentheses past the limit", deepParens(MaxNestingDepth + 1), "expression nests deeper than the limit of 64 levels of parentheses", Position{4, exprColumn + MaxNestingDepth}},
		{"2 MB of parentheses", twoMB, tooLong(twoMB), Position{1, 1}},
		{"parentheses filling the largest schema", deepParens((MaxSchemaBytes - 100) / 2), "expression nests deeper than the limit of 64 levels of parentheses", Position{4, exprColumn + MaxNestingDepth}},
		{"terms at the limit", permissionSchema(chain(MaxExpressionTerms, " + ", "viewer")), "", Position{}},
		{"terms past the limit", permissionSchema(chain(MaxExpressionTerms+1, " - ", "viewer")), `permission "view" has more than the limit of 10000 terms in its expression`, Position{4, exprColumn + MaxExpressionTerms*len(" - viewer")}},
		{"terms past the limit in parentheses", permissionSchema("(" + chain(MaxExpressionTerms+1, " & ", "nil") + ")"), `permission "view" has more than the limit of 10000 terms in its expression`, Position{4, exprColumn + 1 + MaxExpressionTerms*len(" & nil")}},
		{"type arguments at the limit", deepType(MaxNestingDepth), "", Position{}},
		{"type arguments past the limit", deepType(MaxNestingDepth + 1), "parameter type nests deeper than the limit of 64 levels of type arguments", Position{1, len("caveat cav(a ") + 1 + MaxNestingDepth*len("list<") + len("list")}},
		{"caveat at the limit", caveatSchema("a > 0" + strings.Repeat(" ", MaxCaveatExpressionBytes-5)), "", Position{}},
		{"caveat past the limit", caveatSchema(longCaveat), fmt.Sprintf(`caveat "cav": expression is %d bytes, over the limit of 4096 bytes`, len(longCaveat)), Position{2, 2}},
		{"caveat of parentheses filling the largest schema", caveatSchema(hugeCaveat), fmt.Sprintf(`caveat "cav": expression is %d bytes, over the limit of 4096 bytes`, len(hugeCaveat)), Position{2, 2}},
		{"schema past the limit", longSchema, tooLong(longSchema), Position{1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantErr == "" {
				if _, err := Compile("limits.zed", tc.src); err != nil {
					t.Fatalf("input at the limit does not compile: %.500v", err)
				}
				return
			}
			errs := compileErrors(t, tc.src)
			if len(errs) != 1 || errs[0].Message != tc.wantErr || errs[0].Pos != tc.wantPos {
				t.Fatalf("got %d errors, first %q at %v; want %q at %v", len(errs), errs[0].Message, errs[0].Pos, tc.wantErr, tc.wantPos)
			}
		})
	}
}

// maxTermsSchema has a permission at MaxExpressionTerms in each operator:
// the deepest syntax trees (an operator chain is as deep as it is long)
// the parser lets through.
func maxTermsSchema() string {
	var src strings.Builder
	src.WriteString("definition user {}\ndefinition document {\n\trelation viewer: user\n\trelation parent: document\n")
	for i, op := range []string{" + ", " & ", " - "} {
		fmt.Fprintf(&src, "\tpermission perm%d = %s\n", i, chain(MaxExpressionTerms, op, "parent->viewer"))
	}
	src.WriteString("}\n")
	return src.String()
}

// TestMaxTerms runs every pass that recurses over expressions (compile,
// format, print, compare, reachability) on the deepest expressions the
// limits allow, and checks that printing and compiling agree.
func TestMaxTerms(t *testing.T) {
	src := maxTermsSchema()
	s := mustCompileT(t, src)
	formatted, err := FormatSource("max.zed", src)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"formatted": formatted, "printed": s.String()} {
		again, err := Compile(name+".zed", text)
		if err != nil {
			t.Fatalf("%s schema does not compile: %.300v", name, err)
		}
		if d := Compare(s, again); !d.Empty() {
			t.Fatalf("%s schema compiles differently: %.300s", name, d)
		}
	}
	if d := Compare(mustCompileT(t, permissionSchema("viewer")), s); len(d.Definitions) != 1 {
		t.Fatalf("diff: %.300s", d)
	}
	if !s.Reachability().Toward(Node{"document", "perm2"}).Reaches(Node{"user", ""}) {
		t.Fatal("user does not reach document#perm2")
	}
}

// fanOutSchema has types definitions t0000... each declaring `target`, a
// relation on doc allowing all of them, and perms permissions on doc, each
// `perm = fan->target` repeated terms times: perms*types arrow edges.
func fanOutSchema(types, perms, terms int) string {
	var b strings.Builder
	for i := range types {
		fmt.Fprintf(&b, "definition t%04d { relation target: t0000 }\n", i)
	}
	b.WriteString("definition doc {\n\trelation fan: ")
	for i := range types {
		if i > 0 {
			b.WriteString(" | ")
		}
		fmt.Fprintf(&b, "t%04d", i)
	}
	b.WriteString("\n")
	for i := range perms {
		fmt.Fprintf(&b, "\tpermission perm%04d = %s\n", i, chain(terms, " + ", "fan->target"))
	}
	b.WriteString("}\n")
	return b.String()
}

// TestArrowEdgeLimit checks that a schema whose arrows would expand to more
// than MaxArrowEdges reachability edges is refused at the permission that
// passes the limit. Before the limit, 80 kB of such a schema compiled, and
// its first reverse lookup built a million edges (600 MB); a schema of
// 1 MiB took a minute to compile and exhausted memory on lookup.
func TestArrowEdgeLimit(t *testing.T) {
	const types = 1000
	perms := MaxArrowEdges / types
	if _, err := Compile("fan.zed", fanOutSchema(types, perms, 1)); err != nil {
		t.Fatalf("schema at the limit: %.300v", err)
	}
	errs := compileErrors(t, fanOutSchema(types, perms+1, 1))
	want := fmt.Sprintf(`the schema's arrows expand to more than the limit of 250000 edges (one per arrow and subject type declaring its target); permission "perm%04d" on definition "doc" passes it`, perms)
	if len(errs) != 1 || errs[0].Message != want || errs[0].Pos != (Position{Line: types + 3 + perms, Column: 13}) {
		t.Fatalf("got %d errors, first %q at %v", len(errs), errs[0].Message, errs[0].Pos)
	}
}

// TestRepeatedArrows checks that an arrow repeated in an expression adds
// no edges: the compiler counts it once, and building the reachability
// graph allocates for one. Before, each repetition expanded into one edge
// per subject type, merged only after sorting: 10,000 repetitions over
// 1,000 types allocated a gigabyte.
func TestRepeatedArrows(t *testing.T) {
	s := mustCompileT(t, fanOutSchema(1000, 1, MaxExpressionTerms))
	var r *Reachability
	if n := allocatedBytes(func() { r = s.Reachability() }); n > 10<<20 {
		t.Errorf("building the reachability graph allocated %d bytes", n)
	}
	if got := len(r.Toward(Node{"doc", "perm0000"}).EntryPoints()); got != 1001 {
		t.Errorf("%d entry points to doc#perm0000, want t0000 and t0000#target ... t0999#target", got)
	}
}

// TestAllowedListIsClipped checks that refusing a relationship lists at
// most maxListedAllowed of its relation's allowed types.
func TestAllowedListIsClipped(t *testing.T) {
	s := mustCompileT(t, fanOutSchema(1000, 0, 0))
	err := s.ValidateRelationship(graph.MustParseRelationship("doc:1#fan@doc:2"))
	want := "subject doc is not allowed on doc#fan (allowed: t0000, t0001, t0002, t0003, t0004, t0005, t0006, t0007, t0008, t0009, t0010, t0011, t0012, t0013, t0014, t0015, t0016, t0017, t0018, t0019, and 980 more)"
	if err == nil || err.Error() != want {
		t.Fatalf("ValidateRelationship = %v\nwant %s", err, want)
	}
}

// TestSchemaCaveatBytes checks that caveat expressions are bounded in
// total: the error comes once, at the caveat passing the limit, and no
// caveat after it is compiled (or reported as unknown where it is used).
func TestSchemaCaveatBytes(t *testing.T) {
	body := "a > 0" + strings.Repeat(" || a > 0", 400) // 3,605 bytes
	n := MaxSchemaCaveatBytes/len(body) + 1            // the first past the limit
	var b strings.Builder
	b.WriteString("definition user {}\ndefinition document {\n\trelation viewer: user")
	for i := range n + 3 {
		fmt.Fprintf(&b, " | user with cav%03d", i)
	}
	b.WriteString("\n}\n")
	for i := range n + 3 {
		fmt.Fprintf(&b, "caveat cav%03d(a int) {\n\t%s\n}\n", i, body)
	}
	errs := compileErrors(t, b.String())
	want := fmt.Sprintf(`caveat "cav%03d": the schema's caveat expressions total more than the limit of 65536 bytes`, n-1)
	if len(errs) != 1 || errs[0].Message != want || errs[0].Pos.Line != 4+3*(n-1)+2 {
		t.Fatalf("got %d errors, first %q at %v; want %q", len(errs), errs[0].Message, errs[0].Pos, want)
	}
}

// TestLimitsInParse checks that Parse, used by the formatter, enforces the
// same limits as Compile.
func TestLimitsInParse(t *testing.T) {
	src := permissionSchema(strings.Repeat("(", 200_000))
	_, err := Parse("limits.zed", src)
	if err == nil || !strings.Contains(err.Error(), "nests deeper than the limit of 64") {
		t.Fatalf("Parse error = %.300v", err)
	}
}

// TestErrorsAreBounded checks that a file with many problems, on one long
// line, reports a bounded number of errors with clipped snippets.
func TestErrorsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("definition user {} definition document { relation viewer: user; permission view = ")
	for i := range 5_000 {
		if i > 0 {
			b.WriteString(" + ")
		}
		fmt.Fprintf(&b, "missing_%d", i)
	}
	b.WriteString(" }")
	errs := compileErrors(t, b.String())
	if len(errs) != maxReportedErrors+1 {
		t.Fatalf("%d errors, want %d and a last one saying there were more", len(errs), maxReportedErrors+1)
	}
	if last := errs[len(errs)-1].Message; last != "too many errors: only the first 100 are reported" {
		t.Errorf("last error %q", last)
	}
	for _, e := range errs[:5] {
		if s := e.Snippet(); len(s) > 2*maxSnippetBytes+20 {
			t.Errorf("snippet of %d bytes for %v", len(s), e)
		}
	}
	if n := len(errs.Error()); n > 50_000 {
		t.Errorf("error text is %d bytes", n)
	}
}

// TestSnippetCaret checks that a clipped snippet still puts the caret
// under the error, including after multi-byte characters and tabs.
func TestSnippetCaret(t *testing.T) {
	line := "\t/*" + strings.Repeat("é", 300) + "*/ oops " + strings.Repeat("x", 500)
	src := "definition user {}\n" + line + "\n"
	errs := compileErrors(t, src)
	e := errs[0]
	if e.Pos != (Position{Line: 2, Column: 307}) {
		t.Fatalf("error at %v: %v", e.Pos, e)
	}
	lines := strings.Split(e.Snippet(), "\n")
	if len(lines) != 2 {
		t.Fatalf("snippet %q", e.Snippet())
	}
	text, caret := []rune(lines[0]), []rune(lines[1])
	at := len(caret) - 1
	if caret[at] != '^' || at >= len(text) || string(text[at:at+4]) != "oops" {
		t.Fatalf("caret not under the error:\n%s", e.Snippet())
	}
	if !strings.HasPrefix(lines[0], "\t...") || !strings.HasSuffix(lines[0], "...") || len(lines[0]) > maxSnippetBytes+10 {
		t.Errorf("snippet not clipped on both sides: %q", lines[0])
	}
}

// TestLongNameSuggestion checks that a huge unknown name next to huge
// declared names gets no suggestion (edit distance would cost the product
// of their lengths) and that the error is still reported.
func TestLongNameSuggestion(t *testing.T) {
	long := strings.Repeat("a", 200_000)
	src := "definition " + long + "b {}\ndefinition document {\n\trelation viewer: " + long + "c\n}\n"
	errs := compileErrors(t, src)
	found := false
	for _, e := range errs {
		if strings.HasPrefix(e.Message, "unknown type") {
			found = true
			if e.Suggestion != "" {
				t.Errorf("suggestion %.40q for a 200 kB name", e.Suggestion)
			}
		}
	}
	if !found {
		t.Fatalf("no unknown-type error in %.500v", errs)
	}
}

// TestCaveatContextDepth checks that a request context nesting past
// graph.MaxCaveatContextDepth in an `any` parameter is refused with an
// error callers map to INVALID_ARGUMENT, however deep it goes.
func TestCaveatContextDepth(t *testing.T) {
	s := mustCompileT(t, caveatSchema("a > 0 || m != null"))
	var deep any = 1.0
	for range 100_000 {
		deep = []any{deep}
	}
	_, err := s.Caveat("cav").Evaluate(map[string]any{"m": deep})
	if !errors.Is(err, graph.ErrInvalid) || !strings.Contains(err.Error(), "deeper than the limit of 32 levels") {
		t.Fatalf("Evaluate = %v", err)
	}
}

// allocatedBytes returns the bytes f allocates.
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestPrintingIsLinear checks that printing an expression allocates in
// proportion to its text. An operator chain is a tree as deep as it is
// long; building the text by concatenating each subtree's string copied it
// once per level, quadratic in the number of terms (gigabytes, and minutes
// of CPU, for the longest expressions a request can carry).
func TestPrintingIsLinear(t *testing.T) {
	const terms = 20_000
	var exclusion Expr = &RelationRef{Name: "viewer"}
	var union ExprNode = &NameNode{Name: "viewer"}
	for range terms - 1 {
		exclusion = &Exclusion{Base: exclusion, Subtracted: &RelationRef{Name: "viewer"}}
		union = &BinaryNode{Op: OpUnion, Left: union, Right: &NameNode{Name: "viewer"}}
	}
	ast := &AST{Items: []Decl{&DefinitionDecl{Name: "document", Members: []Member{&PermissionDecl{Name: "view", Expr: union}}}}}
	old := mustCompileT(t, permissionSchema("viewer"))
	newer := mustCompileT(t, permissionSchema("viewer"))
	newer.Definitions["document"].Permissions["view"].Expr = exclusion
	cases := []struct {
		name  string
		print func() string
	}{
		{"ExprString", func() string { return ExprString(exclusion) }},
		{"Compare", func() string { return Compare(old, newer).String() }},
		{"Format", func() string { return Format(ast) }},
	}
	for _, c := range cases {
		var out string
		n := allocatedBytes(func() { out = c.print() })
		if !strings.Contains(out, chain(terms, " - ", "viewer")) && !strings.Contains(out, chain(terms, " + ", "viewer")) {
			t.Fatalf("%s: wrong output %.200q", c.name, out)
		}
		if limit := uint64(8*len(out) + 1<<20); n > limit {
			t.Errorf("%s allocated %d bytes for %d bytes of output; want at most %d", c.name, n, len(out), limit)
		}
	}
}

// BenchmarkCompileAndCompareMaxTerms compiles and compares schemas whose
// permissions have the most terms allowed, in each operator.
func BenchmarkCompileAndCompareMaxTerms(b *testing.B) {
	src := maxTermsSchema()
	old := mustCompileB(b, permissionSchema("viewer"))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		s := mustCompileB(b, src)
		if Compare(old, s).Empty() {
			b.Fatal("no difference")
		}
	}
}

// BenchmarkPrint150kTerms prints 150,000-term expressions built directly
// (past MaxExpressionTerms, which only the parser applies): the printers
// are linear whatever the size.
func BenchmarkPrint150kTerms(b *testing.B) {
	const terms = 150_000
	var exclusion Expr = &RelationRef{Name: "viewer"}
	var union ExprNode = &NameNode{Name: "viewer"}
	for range terms - 1 {
		exclusion = &Exclusion{Base: exclusion, Subtracted: &RelationRef{Name: "viewer"}}
		union = &BinaryNode{Op: OpUnion, Left: union, Right: &NameNode{Name: "viewer"}}
	}
	ast := &AST{Items: []Decl{&DefinitionDecl{Name: "document", Members: []Member{&PermissionDecl{Name: "view", Expr: union}}}}}
	b.Run("ExprString", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ExprString(exclusion)
		}
	})
	b.Run("Format", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Format(ast)
		}
	})
}

func mustCompileB(b *testing.B, src string) *Schema {
	b.Helper()
	s, err := Compile("bench.zed", src)
	if err != nil {
		b.Fatalf("%.500v", err)
	}
	return s
}
