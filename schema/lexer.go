package schema

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// tokenKind classifies a lexical token of the schema language.
type tokenKind int

const (
	tokEOF tokenKind = iota
	tokNewline
	tokIdent // identifiers and keywords; type paths may contain '/'
	tokLBrace
	tokRBrace
	tokLParen
	tokRParen
	tokColon
	tokSemicolon
	tokPipe
	tokHash
	tokPlus
	tokAmp
	tokMinus
	tokArrow
	tokDot
	tokComma
	tokEquals
	tokStar
	tokLt
	tokGt
	tokEllipsis
	tokInvalid
)

var tokenNames = map[tokenKind]string{
	tokEOF:       "end of file",
	tokNewline:   "newline",
	tokIdent:     "identifier",
	tokLBrace:    "'{'",
	tokRBrace:    "'}'",
	tokLParen:    "'('",
	tokRParen:    "')'",
	tokColon:     "':'",
	tokSemicolon: "';'",
	tokPipe:      "'|'",
	tokHash:      "'#'",
	tokPlus:      "'+'",
	tokAmp:       "'&'",
	tokMinus:     "'-'",
	tokArrow:     "'->'",
	tokDot:       "'.'",
	tokComma:     "','",
	tokEquals:    "'='",
	tokStar:      "'*'",
	tokLt:        "'<'",
	tokGt:        "'>'",
	tokEllipsis:  "'...'",
	tokInvalid:   "invalid character",
}

func (k tokenKind) String() string { return tokenNames[k] }

// token is one lexeme with its byte offsets and position.
type token struct {
	kind  tokenKind
	text  string
	pos   Position
	start int // byte offset of the first byte
	end   int // byte offset just past the last byte
}

// describe names the token for error messages.
func (t token) describe() string {
	switch t.kind {
	case tokIdent:
		return fmt.Sprintf("%q", t.text)
	case tokInvalid:
		return fmt.Sprintf("invalid character %q", t.text)
	}
	return t.kind.String()
}

// comment is a `//` or `/* */` comment, kept for doc comments and the
// formatter. Text is the comment as written, without trailing whitespace.
type comment struct {
	text  string
	pos   Position
	start int
	// endLine is the line the comment ends on.
	endLine int
	// trailing means a token precedes the comment on its first line.
	trailing bool
	// used means the parser attached it as a line comment.
	used bool
}

// lexer turns source into tokens on demand. It records comments as it
// passes them; an unterminated block comment is reported once.
type lexer struct {
	src      string
	off      int
	line     int
	col      int // 1-based rune column of src[off]
	comments []comment
	errs     []lexError
	// tokLine is the line of the last token other than a newline.
	tokLine int
}

type lexError struct {
	pos Position
	msg string
}

func newLexer(src string) *lexer {
	return &lexer{src: src, line: 1, col: 1}
}

func (l *lexer) position() Position { return Position{Line: l.line, Column: l.col} }

// advance moves past n bytes, keeping line and column current.
func (l *lexer) advance(n int) {
	for i := 0; i < n && l.off < len(l.src); {
		r, size := utf8.DecodeRuneInString(l.src[l.off:])
		l.off += size
		i += size
		if r == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
	}
}

// reset moves the lexer back to byte offset off at position pos.
func (l *lexer) reset(off int, pos Position) {
	l.off = off
	l.line = pos.Line
	l.col = pos.Column
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// next returns the next token. Runs of newlines become one tokNewline.
func (l *lexer) next() token {
	sawNewline := false
	var nlTok token
	for l.off < len(l.src) {
		c := l.src[l.off]
		switch {
		case c == '\n':
			if !sawNewline {
				sawNewline = true
				nlTok = token{kind: tokNewline, text: "\n", pos: l.position(), start: l.off, end: l.off + 1}
			}
			l.advance(1)
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.advance(1)
			continue
		case c == '/' && strings.HasPrefix(l.src[l.off:], "//"):
			l.lineComment()
			continue
		case c == '/' && strings.HasPrefix(l.src[l.off:], "/*"):
			l.blockComment()
			continue
		}
		break
	}
	if sawNewline {
		return nlTok
	}
	start, pos := l.off, l.position()
	if l.off >= len(l.src) {
		return token{kind: tokEOF, pos: pos, start: start, end: start}
	}
	c := l.src[l.off]
	if isIdentStart(c) {
		end := l.off
		for end < len(l.src) {
			if isIdentChar(l.src[end]) {
				end++
				continue
			}
			// A '/' joins prefix segments of a type path (`tenant/doc`)
			// when an identifier follows directly.
			if l.src[end] == '/' && end+1 < len(l.src) && isIdentStart(l.src[end+1]) {
				end++
				continue
			}
			break
		}
		l.advance(end - l.off)
		l.tokLine = pos.Line
		return token{kind: tokIdent, text: l.src[start:end], pos: pos, start: start, end: end}
	}
	kind, size := tokInvalid, 1
	switch c {
	case '{':
		kind = tokLBrace
	case '}':
		kind = tokRBrace
	case '(':
		kind = tokLParen
	case ')':
		kind = tokRParen
	case ':':
		kind = tokColon
	case ';':
		kind = tokSemicolon
	case '|':
		kind = tokPipe
	case '#':
		kind = tokHash
	case '+':
		kind = tokPlus
	case '&':
		kind = tokAmp
	case '-':
		kind = tokMinus
		if strings.HasPrefix(l.src[l.off:], "->") {
			kind, size = tokArrow, 2
		}
	case '.':
		kind = tokDot
		if strings.HasPrefix(l.src[l.off:], "...") {
			kind, size = tokEllipsis, 3
		}
	case ',':
		kind = tokComma
	case '=':
		kind = tokEquals
	case '*':
		kind = tokStar
	case '<':
		kind = tokLt
	case '>':
		kind = tokGt
	default:
		_, size = utf8.DecodeRuneInString(l.src[l.off:])
	}
	l.advance(size)
	l.tokLine = pos.Line
	return token{kind: kind, text: l.src[start:l.off], pos: pos, start: start, end: l.off}
}

func (l *lexer) lineComment() {
	start, pos := l.off, l.position()
	end := strings.IndexByte(l.src[l.off:], '\n')
	if end < 0 {
		end = len(l.src) - l.off
	}
	l.advance(end)
	text := strings.TrimRight(l.src[start:l.off], " \t\r")
	l.comments = append(l.comments, comment{text: text, pos: pos, start: start, endLine: pos.Line, trailing: l.tokLine == pos.Line})
}

func (l *lexer) blockComment() {
	start, pos := l.off, l.position()
	end := strings.Index(l.src[l.off+2:], "*/")
	if end < 0 {
		l.errs = append(l.errs, lexError{pos: pos, msg: "unterminated comment: missing '*/'"})
		l.advance(len(l.src) - l.off)
		return
	}
	l.advance(end + 4)
	l.comments = append(l.comments, comment{text: normalizeBlockComment(l.src[start:l.off]), pos: pos, start: start, endLine: l.line, trailing: l.tokLine == pos.Line})
}

// normalizeBlockComment drops the indentation of a block comment's
// continuation lines, which the formatter re-indents; lines starting with
// '*' keep one space so the stars line up under the opening "/*".
func normalizeBlockComment(text string) string {
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		line = strings.TrimRight(line, " \t\r")
		if i > 0 {
			line = strings.TrimLeft(line, " \t")
			if strings.HasPrefix(line, "*") {
				line = " " + line
			}
		}
		lines[i] = line
	}
	return strings.Join(lines, "\n")
}

// caveatBody scans the raw CEL text of a caveat body starting just after
// its '{' and ending before the matching '}', which it consumes. Braces
// inside CEL string literals and `//` comments do not count. ok is false
// when the body is not closed before the end of the file.
func (l *lexer) caveatBody() (body string, bodyPos Position, ok bool) {
	start, pos := l.off, l.position()
	depth := 0
	i := l.off
	for i < len(l.src) {
		c := l.src[i]
		switch {
		case c == '{':
			depth++
		case c == '}':
			if depth == 0 {
				l.advance(i - l.off)
				body = l.src[start:l.off]
				l.tokLine = l.line
				l.advance(1)
				return body, pos, true
			}
			depth--
		case c == '/' && i+1 < len(l.src) && l.src[i+1] == '/':
			nl := strings.IndexByte(l.src[i:], '\n')
			if nl < 0 {
				i = len(l.src)
				continue
			}
			i += nl
			continue
		case c == '\'' || c == '"':
			i = skipCELString(l.src, i)
			continue
		}
		i++
	}
	l.advance(len(l.src) - l.off)
	return l.src[start:], pos, false
}

// skipCELString returns the offset just past the CEL string literal that
// starts at i (single, double or triple quoted), or len(src) if it is not
// closed.
func skipCELString(src string, i int) int {
	q := src[i]
	triple := strings.Repeat(string(q), 3)
	if strings.HasPrefix(src[i:], triple) {
		end := strings.Index(src[i+3:], triple)
		if end < 0 {
			return len(src)
		}
		return i + 3 + end + 3
	}
	raw := i > 0 && (src[i-1] == 'r' || src[i-1] == 'R')
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if !raw {
				j++
			}
		case q:
			return j + 1
		case '\n':
			return j
		}
	}
	return len(src)
}
