package schema

import (
	"strings"
)

// Parse reads a schema file into its syntax tree. It recovers from syntax
// errors, so the returned AST holds every declaration that parsed even when
// the error (an *ErrorList) is non-nil.
func Parse(filename, src string) (*AST, error) {
	sink := newErrorSink(filename, src)
	ast := parse(filename, src, sink)
	return ast, sink.result()
}

// parser is a recursive-descent parser over a lazily lexed token stream.
type parser struct {
	lex  *lexer
	buf  []token // lookahead; buf[head] is the current token
	head int
	errs *errorSink
	// nextComment indexes the first lexer comment not yet attached.
	nextComment int
	// prevKind is the kind of the last consumed token.
	prevKind tokenKind
	// lastLine is the line of the last consumed token other than a newline.
	lastLine int
	// memberName is the name of the member being parsed, once read.
	memberName string
	// depth is the parenthesis nesting and terms the operands read so far
	// in the permission expression being parsed; both reset per statement.
	depth, terms int
}

// bailout unwinds a statement after its first syntax error; the statement
// loop recovers and resynchronizes.
type bailout struct{}

func parse(filename, src string, sink *errorSink) *AST {
	ast := &AST{File: filename}
	if len(src) > MaxSchemaBytes {
		sink.add(Position{Line: 1, Column: 1}, "", "schema is %d bytes, over the limit of %d bytes", len(src), MaxSchemaBytes)
		return ast
	}
	p := &parser{lex: newLexer(src), errs: sink}
	for {
		p.skipTerminators()
		t := p.peek(0)
		if t.kind == tokEOF {
			break
		}
		if d := p.topLevel(); d != nil {
			p.attachLineComment(d)
			ast.Items = append(ast.Items, d)
		}
	}
	ast.Trailing = p.commentsBefore(len(src) + 1)
	for _, e := range p.lex.errs {
		sink.add(e.pos, "", "%s", e.msg)
	}
	return ast
}

func (p *parser) peek(i int) token {
	for len(p.buf)-p.head <= i {
		p.buf = append(p.buf, p.lex.next())
	}
	return p.buf[p.head+i]
}

func (p *parser) next() token {
	t := p.peek(0)
	p.head++
	if p.head == len(p.buf) {
		p.buf, p.head = p.buf[:0], 0
	}
	p.prevKind = t.kind
	if t.kind != tokNewline {
		p.lastLine = t.pos.Line
	}
	return t
}

// peekSkipNL returns the first token that is not a newline.
func (p *parser) peekSkipNL() token {
	for i := 0; ; i++ {
		if t := p.peek(i); t.kind != tokNewline {
			return t
		}
	}
}

func (p *parser) skipNL() {
	for p.peek(0).kind == tokNewline {
		p.next()
	}
}

func (p *parser) skipTerminators() {
	for k := p.peek(0).kind; k == tokNewline || k == tokSemicolon; k = p.peek(0).kind {
		p.next()
	}
}

func (p *parser) isKeyword(t token, kw string) bool { return t.kind == tokIdent && t.text == kw }

// fail records a syntax error at t and abandons the statement.
func (p *parser) fail(t token, format string, args ...any) {
	p.errs.add(t.pos, "", format, args...)
	panic(bailout{})
}

func (p *parser) expect(kind tokenKind, what string) token {
	t := p.peek(0)
	if t.kind != kind {
		p.fail(t, "expected %s, found %s", what, t.describe())
	}
	return p.next()
}

func (p *parser) expectIdent(what string) token {
	t := p.peek(0)
	if t.kind != tokIdent {
		p.fail(t, "expected %s, found %s", what, t.describe())
	}
	return p.next()
}

// attachLineComment gives node the comments that follow its last token on
// the same line (`relation viewer: user // who may view`).
func (p *parser) attachLineComment(node any) {
	line := p.lastLine
	p.peek(0) // lex past any comment on that line
	var texts []string
	cs := p.lex.comments
	for i := p.nextComment; i < len(cs); i++ {
		if c := &cs[i]; !c.used && c.trailing && c.pos.Line == line && c.endLine == line {
			texts = append(texts, c.text)
			c.used = true
		}
	}
	if len(texts) == 0 {
		return
	}
	text := strings.Join(texts, " ")
	switch n := node.(type) {
	case *UseDecl:
		n.LineComment = text
	case *DefinitionDecl:
		n.LineComment = text
	case *CaveatDecl:
		n.LineComment = text
	case *RelationDecl:
		n.LineComment = text
	case *PermissionDecl:
		n.LineComment = text
	}
}

// commentsBefore takes the unattached comments that start before offset.
func (p *parser) commentsBefore(offset int) []string {
	var out []string
	for p.nextComment < len(p.lex.comments) && p.lex.comments[p.nextComment].start < offset {
		if c := p.lex.comments[p.nextComment]; !c.used {
			out = append(out, c.text)
		}
		p.nextComment++
	}
	return out
}

// recovered runs f, turning a bailout into a false result.
func recovered(f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, isBailout := r.(bailout); !isBailout {
				panic(r)
			}
			ok = false
		}
	}()
	f()
	return true
}

// topLevel parses one declaration, or skips to the next one after an
// error.
func (p *parser) topLevel() Decl {
	t := p.peek(0)
	var d Decl
	ok := recovered(func() {
		switch {
		case p.isKeyword(t, "definition"):
			d = p.definition()
		case p.isKeyword(t, "caveat"):
			d = p.caveat()
		case p.isKeyword(t, "use"):
			d = p.use()
		case p.isKeyword(t, "import") || p.isKeyword(t, "partial"):
			p.fail(t, "%q (composable schemas) is not supported: combine the files into one schema", t.text)
		default:
			p.fail(t, "expected \"definition\", \"caveat\" or \"use\", found %s", t.describe())
		}
	})
	if !ok {
		p.syncTopLevel()
	}
	return d
}

// syncTopLevel skips tokens up to the next top-level keyword at the start
// of a line outside braces, or the end of the file.
func (p *parser) syncTopLevel() {
	depth := 0
	atLineStart := false
	for {
		t := p.peek(0)
		switch t.kind {
		case tokEOF:
			return
		case tokLBrace:
			depth++
		case tokRBrace:
			if depth > 0 {
				depth--
				if depth == 0 {
					p.next()
					return
				}
			}
		case tokIdent:
			if depth == 0 && atLineStart && isTopLevelKeyword(t.text) {
				return
			}
		}
		atLineStart = t.kind == tokNewline || t.kind == tokSemicolon
		p.next()
	}
}

func (p *parser) use() *UseDecl {
	kw := p.next()
	d := &UseDecl{Pos: kw.pos, Comments: p.commentsBefore(kw.start)}
	flag := p.expectIdent("a flag name after \"use\"")
	d.Flag, d.FlagPos = flag.text, flag.pos
	p.endStatement()
	return d
}

// endStatement requires a newline, ';', '}' or end of file after a
// statement; '}' and end of file are left for the caller.
func (p *parser) endStatement() {
	switch t := p.peek(0); t.kind {
	case tokNewline, tokSemicolon:
		p.next()
	case tokRBrace, tokEOF:
	default:
		p.fail(t, "expected newline or ';' after statement, found %s", t.describe())
	}
}

func (p *parser) definition() *DefinitionDecl {
	kw := p.next()
	d := &DefinitionDecl{Pos: kw.pos, Comments: p.commentsBefore(kw.start)}
	name := p.expectIdent("a definition name")
	d.Name, d.NamePos = name.text, name.pos
	p.skipNL()
	p.expect(tokLBrace, "'{' after the definition name")
	for {
		p.skipTerminators()
		t := p.peek(0)
		if t.kind == tokRBrace {
			d.Trailing = p.commentsBefore(t.start)
			p.next()
			return d
		}
		if t.kind == tokEOF {
			d.Trailing = p.commentsBefore(t.start)
			p.errs.add(t.pos, "", "definition %q is not closed: missing '}'", d.Name)
			return d
		}
		if p.isKeyword(t, "definition") || p.isKeyword(t, "caveat") {
			// A missing '}' before the next declaration: report it and let
			// the next declaration parse normally.
			d.Trailing = p.commentsBefore(t.start)
			p.errs.add(t.pos, "", "definition %q is not closed: missing '}' before %q", d.Name, t.text)
			return d
		}
		var m Member
		p.memberName = ""
		if recovered(func() { m = p.member() }) {
			p.attachLineComment(m)
			d.Members = append(d.Members, m)
		} else {
			if p.memberName != "" {
				d.broken = append(d.broken, p.memberName)
			}
			p.syncMember()
		}
	}
}

// syncMember skips to the end of the current statement inside a
// definition, leaving a closing '}' in place.
func (p *parser) syncMember() {
	depth := 0
	for {
		t := p.peek(0)
		switch t.kind {
		case tokEOF:
			return
		case tokNewline, tokSemicolon:
			if depth == 0 {
				p.next()
				return
			}
		case tokLParen:
			depth++
		case tokRParen:
			if depth > 0 {
				depth--
			}
		case tokRBrace:
			return
		case tokIdent:
			if depth == 0 && p.prevKind == tokNewline && isStatementKeyword(t.text) {
				return
			}
		}
		p.next()
	}
}

// isTopLevelKeyword reports whether word starts a top-level declaration,
// supported or not.
func isTopLevelKeyword(word string) bool {
	switch word {
	case "definition", "caveat", "use", "import", "partial":
		return true
	}
	return false
}

// isStatementKeyword reports whether word starts a statement.
func isStatementKeyword(word string) bool {
	switch word {
	case "relation", "permission", "definition", "caveat":
		return true
	}
	return false
}

func (p *parser) member() Member {
	t := p.peek(0)
	switch {
	case p.isKeyword(t, "relation"):
		return p.relation()
	case p.isKeyword(t, "permission"):
		return p.permission()
	}
	p.fail(t, "expected \"relation\" or \"permission\", found %s", t.describe())
	return nil
}

func (p *parser) relation() *RelationDecl {
	kw := p.next()
	r := &RelationDecl{Pos: kw.pos, Comments: p.commentsBefore(kw.start)}
	name := p.expectIdent("a relation name")
	r.Name, r.NamePos = name.text, name.pos
	p.memberName = name.text
	if p.peek(0).kind == tokIdent {
		p.fail(p.peek(0), "expected ':' between the relation name and its subject types, found %s", p.peek(0).describe())
	}
	if p.peek(0).kind != tokColon {
		// No types at all: the compiler reports it with the relation's name.
		p.endStatement()
		return r
	}
	p.next()
	for {
		p.skipNL()
		r.Types = append(r.Types, p.typeRef())
		if p.peekSkipNL().kind != tokPipe {
			break
		}
		p.skipNL()
		p.next()
	}
	p.endStatement()
	return r
}

func (p *parser) typeRef() *TypeRef {
	name := p.expectIdent("a subject type")
	ref := &TypeRef{Pos: name.pos, Type: name.text}
	switch p.peek(0).kind {
	case tokHash:
		p.next()
		if p.peek(0).kind == tokEllipsis {
			// `type#...` is the object itself, as if no relation was written.
			p.next()
			break
		}
		rel := p.expectIdent("a relation name after '#'")
		ref.Relation, ref.RelationPos = rel.text, rel.pos
	case tokColon:
		p.next()
		p.expect(tokStar, "'*' after ':' in a wildcard type")
		ref.Wildcard = true
	}
	if !p.isKeyword(p.peek(0), "with") {
		return ref
	}
	p.next()
	t := p.expectIdent("a caveat name or \"expiration\" after \"with\"")
	if t.text == "expiration" {
		ref.Expiration, ref.ExpirationPos = true, t.pos
		return ref
	}
	ref.Caveat, ref.CaveatPos = t.text, t.pos
	if p.isKeyword(p.peek(0), "and") {
		p.next()
		exp := p.expectIdent("\"expiration\" after \"and\"")
		if exp.text != "expiration" {
			p.fail(exp, "expected \"expiration\" after \"and\", found %s", exp.describe())
		}
		ref.Expiration, ref.ExpirationPos = true, exp.pos
	}
	return ref
}

func (p *parser) permission() *PermissionDecl {
	kw := p.next()
	d := &PermissionDecl{Pos: kw.pos, Comments: p.commentsBefore(kw.start)}
	name := p.expectIdent("a permission name")
	d.Name, d.NamePos = name.text, name.pos
	p.memberName = name.text
	p.expect(tokEquals, "'=' after the permission name")
	p.skipNL()
	p.depth, p.terms = 0, 0
	d.Expr = p.expr(false)
	p.endStatement()
	return d
}

// Operator precedence: '-' binds loosest, then '&', then '+'; all are
// left-associative. inParens lets newlines appear anywhere.
func (p *parser) expr(inParens bool) ExprNode { return p.binary(OpExclusion, inParens) }

var opTokens = map[BinaryOp]tokenKind{OpUnion: tokPlus, OpIntersection: tokAmp, OpExclusion: tokMinus}

// binary parses a left-associative chain of op whose operands bind tighter.
func (p *parser) binary(op BinaryOp, inParens bool) ExprNode {
	operand := func() ExprNode {
		if op == OpUnion {
			return p.primary(inParens)
		}
		return p.binary(op-1, inParens)
	}
	left := operand()
	for p.peekSkipNL().kind == opTokens[op] {
		p.skipNL()
		opTok := p.next()
		p.skipNL()
		left = &BinaryNode{Pos: opTok.pos, Op: op, Left: left, Right: operand()}
	}
	return left
}

func (p *parser) primary(inParens bool) ExprNode {
	t := p.peek(0)
	switch t.kind {
	case tokLParen:
		if p.depth >= MaxNestingDepth {
			p.fail(t, "expression nests deeper than the limit of %d levels of parentheses", MaxNestingDepth)
		}
		p.depth++
		p.next()
		p.skipNL()
		e := p.expr(true)
		p.skipNL()
		p.expect(tokRParen, "')'")
		p.depth--
		if bin, ok := e.(*BinaryNode); ok {
			bin.Parens = true
		}
		return e
	case tokIdent:
		if p.prevKind == tokNewline && isStatementKeyword(t.text) {
			// The expression ended early: `permission p = a +` and the
			// next statement.
			p.fail(t, "expected a relation, permission, '(' or \"nil\" before the next statement, found %s", t.describe())
		}
	default:
		p.fail(t, "expected a relation, permission, '(' or \"nil\", found %s", t.describe())
	}
	if p.terms++; p.terms > MaxExpressionTerms {
		p.fail(t, "permission %q has more than the limit of %d terms in its expression", p.memberName, MaxExpressionTerms)
	}
	p.next()
	if t.text == "nil" {
		return &NilNode{Pos: t.pos}
	}
	var node ExprNode = &NameNode{Pos: t.pos, Name: t.text}
	switch p.peekSkipNL().kind {
	case tokArrow:
		p.skipNL()
		p.next()
		p.skipNL()
		target := p.expectIdent("a relation or permission after '->'")
		node = &ArrowNode{Pos: t.pos, Tupleset: t.text, Func: ArrowAny, Arrow: true, Target: target.text, TargetPos: target.pos}
	case tokDot:
		p.skipNL()
		p.next()
		fn := p.expectIdent("\"any\" or \"all\" after '.'")
		var f ArrowFunc
		switch fn.text {
		case "any":
			f = ArrowAny
		case "all":
			f = ArrowAll
		default:
			p.fail(fn, "unknown arrow function %q: expected \"any\" or \"all\"", fn.text)
		}
		p.expect(tokLParen, "'(' after \""+fn.text+"\"")
		p.skipNL()
		target := p.expectIdent("a relation or permission")
		p.skipNL()
		p.expect(tokRParen, "')'")
		node = &ArrowNode{Pos: t.pos, Tupleset: t.text, Func: f, Target: target.text, TargetPos: target.pos}
	default:
		return node
	}
	if k := p.peekSkipNL().kind; k == tokArrow || k == tokDot {
		p.fail(p.peekSkipNL(), "nested arrows are not supported: use a permission on the target type instead")
	}
	return node
}

func (p *parser) caveat() *CaveatDecl {
	kw := p.next()
	c := &CaveatDecl{Pos: kw.pos, Comments: p.commentsBefore(kw.start)}
	name := p.expectIdent("a caveat name")
	c.Name, c.NamePos = name.text, name.pos
	p.expect(tokLParen, "'(' after the caveat name")
	p.skipNL()
	for p.peek(0).kind != tokRParen {
		pname := p.expectIdent("a parameter name")
		c.Params = append(c.Params, &ParamDecl{Pos: pname.pos, Name: pname.text, Type: p.typeExpr(0)})
		p.skipNL()
		if p.peek(0).kind != tokComma {
			break
		}
		p.next()
		p.skipNL()
	}
	p.expect(tokRParen, "',' or ')' in the parameter list")
	p.skipNL()
	if p.peek(0).kind != tokLBrace {
		p.fail(p.peek(0), "expected '{' before the caveat expression, found %s", p.peek(0).describe())
	}
	// The body is CEL, not schema tokens: rewind the lexer to just after
	// '{' and drop anything it read ahead.
	brace := p.peek(0)
	p.buf, p.head = p.buf[:0], 0
	p.lex.reset(brace.end, Position{Line: brace.pos.Line, Column: brace.pos.Column + 1})
	p.dropCommentsFrom(brace.end)
	body, bodyPos, ok := p.lex.caveatBody()
	if !ok {
		p.errs.add(brace.pos, "", "caveat %q is not closed: missing '}'", c.Name)
	}
	c.Body, c.BodyPos, c.bodyIndent = normalizeCaveatBody(body, bodyPos)
	if strings.TrimSpace(c.Body) == "" {
		p.errs.add(brace.pos, "", "caveat %q has an empty expression", c.Name)
	}
	p.lastLine = p.lex.tokLine
	return c
}

// dropCommentsFrom forgets comments the lexer found at or after offset.
func (p *parser) dropCommentsFrom(offset int) {
	cs := p.lex.comments
	for len(cs) > p.nextComment && cs[len(cs)-1].start >= offset {
		cs = cs[:len(cs)-1]
	}
	p.lex.comments = cs
}

// typeExpr parses a parameter type nested depth levels deep in type
// arguments.
func (p *parser) typeExpr(depth int) *TypeExpr {
	name := p.expectIdent("a parameter type")
	t := &TypeExpr{Pos: name.pos, Name: name.text}
	if p.peek(0).kind != tokLt {
		return t
	}
	if depth >= MaxNestingDepth {
		p.fail(p.peek(0), "parameter type nests deeper than the limit of %d levels of type arguments", MaxNestingDepth)
	}
	p.next()
	for {
		p.skipNL()
		t.Args = append(t.Args, p.typeExpr(depth+1))
		p.skipNL()
		if p.peek(0).kind != tokComma {
			break
		}
		p.next()
	}
	p.expect(tokGt, "'>' closing the type arguments")
	return t
}

// normalizeCaveatBody trims blank lines around a caveat body and removes
// the indentation its lines share, so the formatter can re-indent it.
// Bodies with triple-quoted strings are only trimmed: their line breaks
// and indentation may be part of a string value.
func normalizeCaveatBody(body string, pos Position) (string, Position, int) {
	// Skip leading whitespace, tracking the position of the first text.
	i := 0
	for i < len(body) && strings.ContainsRune(" \t\r\n", rune(body[i])) {
		if body[i] == '\n' {
			pos.Line++
			pos.Column = 1
		} else {
			pos.Column++
		}
		i++
	}
	firstOnOwnLine := strings.Contains(body[:i], "\n")
	text := strings.TrimRight(body[i:], " \t\r\n")
	if strings.Contains(text, `'''`) || strings.Contains(text, `"""`) || !strings.Contains(text, "\n") {
		return text, pos, 0
	}
	lines := strings.Split(text, "\n")
	for k := range lines {
		lines[k] = strings.TrimRight(lines[k], " \t\r")
	}
	// The first line's indentation was skipped above; when it sat on its
	// own line, it counts toward the shared indentation.
	firstIndent := ""
	if firstOnOwnLine {
		line := body[:i]
		firstIndent = strings.TrimLeft(line[strings.LastIndexByte(line, '\n')+1:], "\r")
	}
	common, have := firstIndent, firstOnOwnLine
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if !have {
			common, have = ind, true
			continue
		}
		for !strings.HasPrefix(ind, common) {
			common = common[:len(common)-1]
		}
	}
	for k := 1; k < len(lines); k++ {
		lines[k] = strings.TrimPrefix(lines[k], common)
	}
	if firstOnOwnLine && len(firstIndent) > len(common) {
		lines[0] = firstIndent[len(common):] + lines[0]
		pos.Column -= len(firstIndent) - len(common)
	}
	return strings.Join(lines, "\n"), pos, len(common)
}
