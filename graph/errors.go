package graph

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every *ParseError and
// *ValidationError, so an API layer can map all of them to one status
// (INVALID_ARGUMENT) without listing the types.
var ErrInvalid = errors.New("invalid relationship syntax or value")

// ParseError reports a string that is not valid relationship syntax. It names
// the offending part and the 1-based byte column where that part starts in
// Input.
type ParseError struct {
	Kind    string // what was being parsed: "relationship", "subject" or "object"
	Input   string // the whole input
	Column  int    // 1-based byte offset of the offending part in Input
	Part    string // e.g. "resource type", "relation", "subject id", "caveat context"
	Value   string // the offending text; empty when the part is missing
	Message string // why it is wrong
}

func (e *ParseError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("parse %s %s: missing %s at column %d: %s",
			e.Kind, quoteClipped(e.Input), e.Part, e.Column, e.Message)
	}
	return fmt.Sprintf("parse %s %s: invalid %s %s at column %d: %s",
		e.Kind, quoteClipped(e.Input), e.Part, quoteClipped(e.Value), e.Column, e.Message)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// ValidationError reports a structurally built value (not parsed from a
// string) with an invalid part, as found by the Validate methods.
type ValidationError struct {
	Part    string // e.g. "resource id", "subject relation", "expiration"
	Value   string // the offending value as text
	Message string // why it is wrong
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s %s: %s", e.Part, quoteClipped(e.Value), e.Message)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// maxQuoted bounds how much of an input or value an error message repeats:
// an over-long ID must not turn one error into a kilobyte of log.
const maxQuoted = 96

// quoteClipped quotes s for an error message, eliding the middle of long
// values.
func quoteClipped(s string) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%q", s[:maxQuoted/2])
	fmt.Fprintf(&b, "...(%d bytes)...", len(s)-maxQuoted)
	fmt.Fprintf(&b, "%q", s[len(s)-maxQuoted/2:])
	return b.String()
}
