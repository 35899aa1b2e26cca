package schema

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a schema file, at a position.
type Error struct {
	File    string
	Pos     Position
	Message string
	// Suggestion is a near-miss name the author probably meant, or "".
	Suggestion string
	// line is the source line at Pos, for the caret snippet.
	line string
}

// Error returns `file:line:col: message (did you mean "x"?)`.
func (e *Error) Error() string {
	msg := e.Message
	if e.Suggestion != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Suggestion)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Column, msg)
}

// Snippet returns the source line at the error and a caret under its
// column, or "" when the line is unknown.
func (e *Error) Snippet() string {
	if e.line == "" {
		return ""
	}
	var pad strings.Builder
	col := 1
	for _, r := range e.line {
		if col >= e.Pos.Column {
			break
		}
		if r == '\t' {
			pad.WriteByte('\t')
		} else {
			pad.WriteByte(' ')
		}
		col++
	}
	return "\t" + e.line + "\n\t" + pad.String() + "^"
}

// ErrorList is every error found in a schema file, sorted by position.
type ErrorList []*Error

// Error prints each error followed by its caret snippet.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
		if s := e.Snippet(); s != "" {
			b.WriteByte('\n')
			b.WriteString(s)
		}
	}
	return b.String()
}

// errorSink collects errors for one file and attaches source lines.
type errorSink struct {
	file  string
	lines []string
	errs  ErrorList
}

func newErrorSink(file, src string) *errorSink {
	return &errorSink{file: file, lines: strings.Split(src, "\n")}
}

func (s *errorSink) add(pos Position, suggestion, format string, args ...any) {
	e := &Error{File: s.file, Pos: pos, Message: fmt.Sprintf(format, args...), Suggestion: suggestion}
	if pos.Line >= 1 && pos.Line <= len(s.lines) {
		e.line = strings.TrimRight(s.lines[pos.Line-1], "\r")
	}
	s.errs = append(s.errs, e)
}

// result returns the sorted, de-duplicated errors, or nil when there are
// none.
func (s *errorSink) result() error {
	if len(s.errs) == 0 {
		return nil
	}
	sort.SliceStable(s.errs, func(i, j int) bool {
		a, b := s.errs[i].Pos, s.errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := make(ErrorList, 0, len(s.errs))
	for i, e := range s.errs {
		if i > 0 && e.Pos == s.errs[i-1].Pos && e.Message == s.errs[i-1].Message {
			continue
		}
		out = append(out, e)
	}
	return &out
}
