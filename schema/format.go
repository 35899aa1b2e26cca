package schema

import "strings"

// FormatSource parses src and returns its canonical form. Files with
// syntax errors are not formatted: the error is the *ErrorList.
func FormatSource(filename, src string) (string, error) {
	ast, err := Parse(filename, src)
	if err != nil {
		return "", err
	}
	return Format(ast), nil
}

// Format prints a parsed schema in canonical form: one blank line between
// top-level declarations, tab indentation, one member per line, minimal
// parentheses, comments kept above what they precede. Format(Parse(s)) is
// stable: formatting its output again changes nothing.
func Format(ast *AST) string {
	var b strings.Builder
	for i, item := range ast.Items {
		if i > 0 {
			// Consecutive `use` lines stay together.
			_, prevUse := ast.Items[i-1].(*UseDecl)
			_, use := item.(*UseDecl)
			if !(prevUse && use) {
				b.WriteByte('\n')
			}
		}
		switch d := item.(type) {
		case *UseDecl:
			writeComments(&b, d.Comments, "")
			b.WriteString("use " + d.Flag + lineComment(d.LineComment) + "\n")
		case *DefinitionDecl:
			formatDefinition(&b, d)
		case *CaveatDecl:
			formatCaveat(&b, d)
		}
	}
	if len(ast.Trailing) > 0 {
		if len(ast.Items) > 0 {
			b.WriteByte('\n')
		}
		writeComments(&b, ast.Trailing, "")
	}
	return b.String()
}

func writeComments(b *strings.Builder, comments []string, indent string) {
	for _, c := range comments {
		for _, line := range strings.Split(c, "\n") {
			if line == "" {
				b.WriteString("\n")
				continue
			}
			b.WriteString(indent + line + "\n")
		}
	}
}

func formatDefinition(b *strings.Builder, d *DefinitionDecl) {
	writeComments(b, d.Comments, "")
	b.WriteString("definition " + d.Name + " {")
	if len(d.Members) == 0 && len(d.Trailing) == 0 {
		b.WriteString("}" + lineComment(d.LineComment) + "\n")
		return
	}
	b.WriteByte('\n')
	for i, m := range d.Members {
		// A blank line separates relations from permissions and sets off
		// commented members.
		if i > 0 && (memberKind(m) != memberKind(d.Members[i-1]) || len(memberComments(m)) > 0) {
			b.WriteByte('\n')
		}
		writeComments(b, memberComments(m), "\t")
		switch m := m.(type) {
		case *RelationDecl:
			b.WriteString("\trelation " + m.Name)
			if len(m.Types) > 0 {
				b.WriteString(": ")
				for j, t := range m.Types {
					if j > 0 {
						b.WriteString(" | ")
					}
					b.WriteString(typeRefString(t))
				}
			}
			b.WriteString(lineComment(m.LineComment) + "\n")
		case *PermissionDecl:
			b.WriteString("\tpermission " + m.Name + " = ")
			b.WriteString(nodeString(m.Expr, 0))
			b.WriteString(lineComment(m.LineComment) + "\n")
		}
	}
	if len(d.Trailing) > 0 {
		if len(d.Members) > 0 {
			b.WriteByte('\n')
		}
		writeComments(b, d.Trailing, "\t")
	}
	b.WriteString("}" + lineComment(d.LineComment) + "\n")
}

// lineComment renders a comment kept at the end of a line.
func lineComment(c string) string {
	if c == "" {
		return ""
	}
	return " " + c
}

func memberComments(m Member) []string {
	switch m := m.(type) {
	case *RelationDecl:
		return m.Comments
	case *PermissionDecl:
		return m.Comments
	}
	return nil
}

func typeRefString(t *TypeRef) string {
	return allowedString(AllowedSubject{Type: t.Type, Relation: t.Relation, Wildcard: t.Wildcard, Caveat: t.Caveat, Expiration: t.Expiration})
}

// nodeString prints an expression with the parentheses its precedence
// needs in context ctx (0 loosest: exclusion, 1 intersection, 2 union).
func nodeString(e ExprNode, ctx int) string {
	if bin, ok := e.(*BinaryNode); ok && bin.Parens && ctx == 0 {
		// Parentheses around a whole expression group nothing.
		outer := *bin
		outer.Parens = false
		e = &outer
	}
	var b strings.Builder
	writeNode(&b, e, ctx)
	return b.String()
}

// writeNode writes e as nodeString does. Writing into one builder keeps
// printing linear in the expression's size: an operator chain is a tree
// as deep as it is long.
func writeNode(b *strings.Builder, e ExprNode, ctx int) {
	switch e := e.(type) {
	case *NameNode:
		b.WriteString(e.Name)
	case *ArrowNode:
		b.WriteString(e.Tupleset)
		switch {
		case e.Func == ArrowAll:
			b.WriteString(".all(" + e.Target + ")")
		case e.Arrow:
			b.WriteString("->" + e.Target)
		default:
			b.WriteString(".any(" + e.Target + ")")
		}
	case *BinaryNode:
		// Precedence: 0 exclusion, 1 intersection, 2 union. The right
		// operand of '-' binds tighter, since '-' is not associative.
		prec, right := 2, 2
		switch e.Op {
		case OpIntersection:
			prec, right = 1, 1
		case OpExclusion:
			prec, right = 0, 1
		}
		parens := prec < ctx || e.Parens
		if parens {
			b.WriteByte('(')
		}
		writeNode(b, e.Left, prec)
		b.WriteString(" " + e.Op.String() + " ")
		writeNode(b, e.Right, right)
		if parens {
			b.WriteByte(')')
		}
	default: // nil and *NilNode
		b.WriteString("nil")
	}
}

func formatCaveat(b *strings.Builder, c *CaveatDecl) {
	writeComments(b, c.Comments, "")
	b.WriteString("caveat " + c.Name + "(")
	for i, p := range c.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name + " ")
		p.Type.write(b)
	}
	b.WriteString(") {\n")
	if c.Body != "" {
		triple := strings.Contains(c.Body, `'''`) || strings.Contains(c.Body, `"""`)
		for i, line := range strings.Split(c.Body, "\n") {
			if triple && i > 0 || line == "" {
				// Lines inside a multi-line string keep their exact text.
				b.WriteString(line + "\n")
				continue
			}
			b.WriteString("\t" + line + "\n")
		}
	}
	b.WriteString("}" + lineComment(c.LineComment) + "\n")
}

// String prints the compiled schema as schema text in canonical form:
// flags, then definitions and caveats in source order, with their doc
// comments. Compiling the result gives an equal schema.
func (s *Schema) String() string {
	var b strings.Builder
	for _, f := range s.Flags {
		b.WriteString("use " + f + "\n")
	}
	sep := func() {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
	}
	for _, name := range s.DefinitionOrder {
		sep()
		d := s.Definitions[name]
		decl := &DefinitionDecl{Name: d.Name, Comments: splitDoc(d.Doc)}
		for _, m := range d.Order {
			if r, p := d.Lookup(m); r != nil {
				rd := &RelationDecl{Name: r.Name, Comments: splitDoc(r.Doc)}
				for _, a := range r.Allowed {
					rd.Types = append(rd.Types, &TypeRef{Type: a.Type, Relation: a.Relation, Wildcard: a.Wildcard, Caveat: a.Caveat, Expiration: a.Expiration})
				}
				decl.Members = append(decl.Members, rd)
			} else {
				decl.Members = append(decl.Members, &PermissionDecl{Name: p.Name, Comments: splitDoc(p.Doc), Expr: exprNode(p.Expr)})
			}
		}
		formatDefinition(&b, decl)
	}
	for _, name := range s.CaveatOrder {
		sep()
		c := s.Caveats[name]
		decl := &CaveatDecl{Name: c.Name, Comments: splitDoc(c.Doc), Body: c.Expression}
		for _, p := range c.Params {
			decl.Params = append(decl.Params, &ParamDecl{Name: p.Name, Type: &TypeExpr{Name: p.Type}})
		}
		formatCaveat(&b, decl)
	}
	return b.String()
}

func splitDoc(doc string) []string {
	if doc == "" {
		return nil
	}
	return []string{doc}
}

// exprNode turns a compiled expression back into syntax for printing.
func exprNode(e Expr) ExprNode {
	switch e := e.(type) {
	case *RelationRef:
		return &NameNode{Name: e.Name}
	case *Arrow:
		return &ArrowNode{Tupleset: e.Tupleset, Target: e.Target, Func: e.Func, Arrow: true}
	case *Union:
		return foldNodes(OpUnion, e.Children)
	case *Intersection:
		return foldNodes(OpIntersection, e.Children)
	case *Exclusion:
		return &BinaryNode{Op: OpExclusion, Left: exprNode(e.Base), Right: exprNode(e.Subtracted)}
	}
	return &NilNode{}
}

func foldNodes(op BinaryOp, children []Expr) ExprNode {
	var out ExprNode
	for i, ch := range children {
		if i == 0 {
			out = exprNode(ch)
			continue
		}
		out = &BinaryNode{Op: op, Left: out, Right: exprNode(ch)}
	}
	if out == nil {
		return &NilNode{}
	}
	return out
}
