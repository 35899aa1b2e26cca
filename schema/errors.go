package schema

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Error is one problem found in a schema file, at a position.
type Error struct {
	File    string
	Pos     Position
	Message string
	// Suggestion is a near-miss name the author probably meant, or "".
	Suggestion string
	// line is the source line at Pos, clipped to maxSnippetBytes around
	// the error, and caretCol the rune column of Pos within it; for the
	// caret snippet.
	line     string
	caretCol int
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
		if col >= e.caretCol {
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

// errorSink collects errors for one file and attaches source lines. It
// keeps the first maxReportedErrors; dropped records where the first
// error past the limit was found.
type errorSink struct {
	file    string
	lines   []string
	errs    ErrorList
	dropped *Position
	// noun is what the sink collects, for the too-many message: "errors"
	// or "warnings".
	noun string
}

func newErrorSink(file, src string) *errorSink {
	return &errorSink{file: file, lines: strings.Split(src, "\n"), noun: "errors"}
}

func (s *errorSink) add(pos Position, suggestion, format string, args ...any) {
	if s.full() {
		if s.dropped == nil {
			s.dropped = &pos
		}
		return
	}
	e := &Error{File: s.file, Pos: pos, Message: fmt.Sprintf(format, args...), Suggestion: suggestion}
	if pos.Line >= 1 && pos.Line <= len(s.lines) {
		e.line, e.caretCol = snippetLine(strings.TrimRight(s.lines[pos.Line-1], "\r"), pos.Column)
	}
	s.errs = append(s.errs, e)
}

// full reports whether further errors will be dropped, so callers can skip
// the work of describing them (suggestions).
func (s *errorSink) full() bool { return len(s.errs) >= maxReportedErrors }

// snippetLine returns the part of line to show around rune column col
// (1-based), at most maxSnippetBytes of it with "..." where it was cut,
// and col's rune column within the result.
func snippetLine(line string, col int) (string, int) {
	if len(line) <= maxSnippetBytes {
		return line, col
	}
	off := 0 // byte offset of col
	for c := 1; c < col && off < len(line); c++ {
		_, size := utf8.DecodeRuneInString(line[off:])
		off += size
	}
	start := max(0, off-maxSnippetBytes/2)
	end := min(len(line), start+maxSnippetBytes)
	start = max(0, end-maxSnippetBytes)
	for start > 0 && start < off && !utf8.RuneStart(line[start]) {
		start++
	}
	for end < len(line) && end > off && !utf8.RuneStart(line[end]) {
		end--
	}
	prefix, suffix := "", ""
	if start > 0 {
		prefix = "..."
	}
	if end < len(line) {
		suffix = "..."
	}
	return prefix + line[start:end] + suffix, len(prefix) + utf8.RuneCountInString(line[start:off]) + 1
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
	out := make(ErrorList, 0, len(s.errs)+1)
	for i, e := range s.errs {
		if i > 0 && e.Pos == s.errs[i-1].Pos && e.Message == s.errs[i-1].Message {
			continue
		}
		out = append(out, e)
	}
	if s.dropped != nil {
		// Last, whatever its position: it is about the list, not the
		// source there.
		out = append(out, &Error{File: s.file, Pos: *s.dropped,
			Message: fmt.Sprintf("too many %s: only the first %d are reported", s.noun, maxReportedErrors)})
	}
	return &out
}
