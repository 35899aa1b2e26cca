package doctest

import (
	"fmt"
	"regexp"
	"strings"
)

// Command is one shell command of a block, with the output the document
// shows for it.
type Command struct {
	Line int    // document line of the command's first line
	Text string // the command's lines, each ending in "\n"
	// Want is the expected output, one element a line, or nil when the
	// document shows none (the output is then not compared).
	Want []string
}

// Commands splits the shell block b into its commands. A command left
// open at the end of the block (an unclosed quote, a here-document
// without its terminator) is an error naming its line.
func Commands(b Block) ([]Command, error) {
	lines := strings.Split(strings.TrimSuffix(b.Text, "\n"), "\n")
	var (
		cmds    []Command
		cur     *Command // the command being read, until it is complete
		sc      shellScanner
		outputs bool // the lines directly under the last command may be its output
	)
	for i, l := range lines {
		n := b.TextLine + i
		if cur != nil {
			cur.Text += l + "\n"
			if sc.line(l) {
				cmds, cur, outputs = append(cmds, *cur), nil, true
			}
			continue
		}
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "":
			outputs = false
		case outputs && (l == "#" || strings.HasPrefix(l, "# ")):
			last := &cmds[len(cmds)-1]
			last.Want = append(last.Want, strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
		case strings.HasPrefix(trimmed, "#"):
			outputs = false
		default:
			cur, sc = &Command{Line: n, Text: l + "\n"}, shellScanner{}
			if sc.line(l) {
				cmds, cur, outputs = append(cmds, *cur), nil, true
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: command never ends (%s)", cur.Line, sc.open())
	}
	return cmds, nil
}

// shellScanner follows enough of the shell's grammar to tell where a
// command ends: quotes, parentheses and command substitutions,
// backslash continuations, comments and here-documents.
type shellScanner struct {
	stack    []byte   // open contexts: '\'', '"', '(' ; empty at top level
	cont     bool     // the last line ended in a backslash
	heredocs []string // terminators of here-documents whose bodies are pending
	inBody   bool     // reading the body of heredocs[0]
}

// heredocStart matches a here-document operator and its word.
var heredocStart = regexp.MustCompile(`^<<-?\s*(?:'([^']+)'|"([^"]+)"|([A-Za-z_][A-Za-z0-9_]*))`)

// line reads one line and reports whether the command is complete after
// it.
func (s *shellScanner) line(l string) bool {
	if s.inBody {
		if strings.TrimLeft(l, "\t") == s.heredocs[0] {
			s.heredocs = s.heredocs[1:]
			s.inBody = len(s.heredocs) > 0
		}
		return s.done()
	}
	s.cont = false
	for i := 0; i < len(l); i++ {
		c := l[i]
		top := byte(0)
		if len(s.stack) > 0 {
			top = s.stack[len(s.stack)-1]
		}
		switch top {
		case '\'':
			if c == '\'' {
				s.pop()
			}
			continue
		case '"':
			switch {
			case c == '\\':
				i++
			case c == '"':
				s.pop()
			case c == '$' && i+1 < len(l) && l[i+1] == '(':
				s.stack = append(s.stack, '(')
				i++
			}
			continue
		}
		switch {
		case c == '\\':
			if i == len(l)-1 {
				s.cont = true
			}
			i++
		case c == '\'' || c == '"':
			s.stack = append(s.stack, c)
		case c == '(':
			s.stack = append(s.stack, '(')
		case c == ')' && top == '(':
			s.pop()
		case c == '#' && (i == 0 || strings.IndexByte(" \t;&|(", l[i-1]) >= 0):
			i = len(l) // a comment runs to the end of the line
		case c == '<' && strings.HasPrefix(l[i:], "<<") && !strings.HasPrefix(l[i:], "<<<"):
			if m := heredocStart.FindStringSubmatch(l[i:]); m != nil {
				s.heredocs = append(s.heredocs, m[1]+m[2]+m[3])
				i += len(m[0]) - 1
			}
		}
	}
	if len(s.heredocs) > 0 {
		s.inBody = true
	}
	return s.done()
}

func (s *shellScanner) pop() { s.stack = s.stack[:len(s.stack)-1] }

func (s *shellScanner) done() bool {
	return len(s.stack) == 0 && !s.cont && !s.inBody && len(s.heredocs) == 0
}

// open says what keeps the command open, for errors.
func (s *shellScanner) open() string {
	switch {
	case s.inBody:
		return fmt.Sprintf("here-document %s never ends", s.heredocs[0])
	case len(s.stack) > 0:
		return fmt.Sprintf("unclosed %c", s.stack[len(s.stack)-1])
	}
	return "ends in a backslash"
}
