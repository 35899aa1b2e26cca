package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/golden"
)

func TestDataDriven(t *testing.T) {
	golden.Run(t, "testdata/*.txt", func(t *testing.T, c *golden.Case) string {
		switch c.Command {
		case "parse":
			return runParse(c.Input)
		case "compile":
			return runCompile(c.Input)
		case "format":
			return runFormat(t, c)
		case "diff":
			return runDiff(t, c)
		case "reach":
			return runReach(t, c, false)
		case "lookup":
			return runReach(t, c, true)
		case "caveat":
			return runCaveat(t, c)
		case "dependent", "computable":
			return runDeps(t, c)
		case "validate":
			return runValidate(t, c)
		}
		t.Fatalf("%s: unknown command %q", c.Pos, c.Command)
		return ""
	})
}

const testFile = "test.zed"

func runParse(src string) string {
	ast, err := Parse(testFile, src)
	var b strings.Builder
	dumpAST(&b, ast)
	if err != nil {
		b.WriteString(err.Error() + "\n")
	}
	return b.String()
}

func runCompile(src string) string {
	s, err := Compile(testFile, src)
	if err != nil {
		return err.Error()
	}
	out := s.String()
	for _, w := range s.Warnings() {
		out += "warning: " + w.Error() + "\n"
	}
	return out
}

// runFormat prints the canonical form and checks that it is stable and
// compiles to the same schema as the input.
func runFormat(t *testing.T, c *golden.Case) string {
	formatted, err := FormatSource(testFile, c.Input)
	if err != nil {
		return err.Error()
	}
	again, err := FormatSource(testFile, formatted)
	if err != nil {
		t.Errorf("%s: formatted output does not parse: %v\n%s", c.Pos, err, formatted)
	} else if again != formatted {
		t.Errorf("%s: format is not stable:\nfirst:\n%s\nsecond:\n%s", c.Pos, formatted, again)
	}
	s1, err1 := Compile(testFile, c.Input)
	s2, err2 := Compile(testFile, formatted)
	if (err1 == nil) != (err2 == nil) {
		t.Errorf("%s: compiling the input gave %v but compiling the formatted output gave %v", c.Pos, err1, err2)
	} else if err1 == nil && s1.String() != s2.String() {
		t.Errorf("%s: formatted schema compiles differently:\n%s\nvs\n%s", c.Pos, s1, s2)
	}
	return formatted
}

func splitInput(t *testing.T, c *golden.Case) []string {
	parts := strings.Split(c.Input, "\n===\n")
	if len(parts) != 2 {
		t.Fatalf("%s: %s needs two parts separated by a line ===", c.Pos, c.Command)
	}
	return parts
}

func mustCompile(t *testing.T, c *golden.Case, src string) *Schema {
	s, err := Compile(testFile, src)
	if err != nil {
		t.Fatalf("%s: %v", c.Pos, err)
	}
	return s
}

func runDiff(t *testing.T, c *golden.Case) string {
	parts := splitInput(t, c)
	d := Compare(mustCompile(t, c, parts[0]), mustCompile(t, c, parts[1]))
	out := d.String()
	if rr := d.RemovedRelations(); len(rr) > 0 {
		out += fmt.Sprintf("removed relations: %v\n", rr)
	}
	for _, ra := range d.RemovedAllowedSubjects() {
		out += fmt.Sprintf("removed allowed subject: %s allows %s\n", ra.Relation, ra.Subject)
	}
	for _, c := range d.ChangedCaveats {
		for _, p := range c.AddedParams {
			out += fmt.Sprintf("caveat %s parameter added: %s %s\n", c.Name, p.Name, p.Type)
		}
		for _, p := range c.RemovedParams {
			out += fmt.Sprintf("caveat %s parameter removed: %s %s\n", c.Name, p.Name, p.Type)
		}
		for _, p := range c.RetypedParams {
			out += fmt.Sprintf("caveat %s parameter %s: %s -> %s\n", c.Name, p.Name, p.OldType, p.NewType)
		}
	}
	for _, dc := range d.DocChanges {
		out += fmt.Sprintf("doc comment changed: definition %q member %q caveat %q: %q -> %q\n", dc.Definition, dc.Member, dc.Caveat, dc.Old, dc.New)
	}
	return out
}

// runReach prints the reachability graph, or the paths toward each target
// in args: every edge (reach) or the edges a reverse lookup walks (lookup).
func runReach(t *testing.T, c *golden.Case, lookup bool) string {
	s := mustCompile(t, c, c.Input)
	r := s.Reachability()
	if len(c.Args) == 0 {
		return r.String()
	}
	var b strings.Builder
	for _, arg := range c.Args {
		typ, rel, _ := strings.Cut(arg, "#")
		if lookup {
			b.WriteString(r.Lookup(Node{typ, rel}).String())
		} else {
			b.WriteString(r.Toward(Node{typ, rel}).String())
		}
	}
	return b.String()
}

// runDeps prints, for each args member (`type#relation`, or `type` for
// the plain type), what it depends on (dependent) or what depends on it
// (computable); errors are printed.
func runDeps(t *testing.T, c *golden.Case) string {
	s := mustCompile(t, c, c.Input)
	var b strings.Builder
	for _, arg := range c.Args {
		typ, rel, _ := strings.Cut(arg, "#")
		var nodes []Node
		var err error
		if c.Command == "dependent" {
			nodes, err = s.DependentRelations(typ, rel)
		} else {
			nodes, err = s.ComputablePermissions(typ, rel)
		}
		if err != nil {
			fmt.Fprintf(&b, "%s: error: %v\n", arg, err)
			continue
		}
		fmt.Fprintf(&b, "%s: %v\n", arg, nodes)
	}
	return b.String()
}

// runCaveat compiles the schema before === and evaluates caveat args[0]
// with each JSON context line after it.
func runCaveat(t *testing.T, c *golden.Case) string {
	parts := splitInput(t, c)
	s := mustCompile(t, c, parts[0])
	if len(c.Args) != 1 {
		t.Fatalf("%s: caveat needs the caveat name", c.Pos)
	}
	cv := s.Caveat(c.Args[0])
	if cv == nil {
		t.Fatalf("%s: no caveat %q", c.Pos, c.Args[0])
	}
	var b strings.Builder
	for _, line := range strings.Split(parts[1], "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var ctx map[string]any
		if err := json.Unmarshal([]byte(line), &ctx); err != nil {
			t.Fatalf("%s: bad JSON %q: %v", c.Pos, line, err)
		}
		out, err := cv.Evaluate(ctx)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "%s -> error: %v\n", line, err)
		case !out.Decided():
			fmt.Fprintf(&b, "%s -> missing %s\n", line, strings.Join(out.Missing, ", "))
		default:
			fmt.Fprintf(&b, "%s -> %v\n", line, out.Satisfied)
		}
	}
	return b.String()
}

// dumpAST prints the syntax tree with positions; expressions are fully
// parenthesized to show how they grouped.
func dumpAST(b *strings.Builder, ast *AST) {
	pos := func(p Position) string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }
	comments := func(indent string, cs []string) {
		for _, c := range cs {
			fmt.Fprintf(b, "%scomment %q\n", indent, c)
		}
	}
	for _, item := range ast.Items {
		switch d := item.(type) {
		case *UseDecl:
			comments("", d.Comments)
			fmt.Fprintf(b, "use %s @%s%s\n", d.Flag, pos(d.Pos), lineComment(d.LineComment))
		case *DefinitionDecl:
			comments("", d.Comments)
			fmt.Fprintf(b, "definition %s @%s%s\n", d.Name, pos(d.NamePos), lineComment(d.LineComment))
			for _, m := range d.Members {
				switch m := m.(type) {
				case *RelationDecl:
					comments("  ", m.Comments)
					var types []string
					for _, t := range m.Types {
						types = append(types, typeRefString(t)+"@"+pos(t.Pos))
					}
					fmt.Fprintf(b, "  relation %s @%s: %s%s\n", m.Name, pos(m.NamePos), strings.Join(types, " | "), lineComment(m.LineComment))
				case *PermissionDecl:
					comments("  ", m.Comments)
					fmt.Fprintf(b, "  permission %s @%s = %s%s\n", m.Name, pos(m.NamePos), dumpExpr(m.Expr), lineComment(m.LineComment))
				}
			}
			comments("  ", d.Trailing)
		case *CaveatDecl:
			comments("", d.Comments)
			var params []string
			for _, p := range d.Params {
				params = append(params, p.Name+" "+p.Type.String())
			}
			fmt.Fprintf(b, "caveat %s @%s (%s) body@%s %q%s\n", d.Name, pos(d.NamePos), strings.Join(params, ", "), pos(d.BodyPos), d.Body, lineComment(d.LineComment))
		}
	}
	comments("", ast.Trailing)
}

func dumpExpr(e ExprNode) string {
	switch e := e.(type) {
	case *BinaryNode:
		return "(" + dumpExpr(e.Left) + " " + e.Op.String() + " " + dumpExpr(e.Right) + ")"
	case nil:
		return "<missing>"
	}
	return nodeString(e, 0)
}

// runValidate checks each relationship (one a line, after ===) against the
// schema: "ok" or the field and message of the refusal.
func runValidate(t *testing.T, c *golden.Case) string {
	parts := splitInput(t, c)
	sch := mustCompile(t, c, parts[0])
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(parts[1]), "\n") {
		r, err := graph.ParseRelationship(line)
		if err != nil {
			t.Fatalf("%s: %v", c.Pos, err)
		}
		b.WriteString(line + " -> ")
		var rerr *RelationshipError
		switch err := sch.ValidateRelationship(r); {
		case err == nil:
			b.WriteString("ok\n")
		case errors.As(err, &rerr):
			b.WriteString(rerr.Field + ": " + rerr.Message + "\n")
		default:
			t.Fatalf("%s: %s: %v is not a RelationshipError", c.Pos, line, err)
		}
	}
	return b.String()
}
