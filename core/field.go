package core

import (
	"errors"
	"fmt"
	"strings"
)

// Path names a request field in the domain's words, one element per
// level: {"consistency", "at_least_as_fresh"} or {"updates[2]",
// "relationship", "subject", "type"}. An API renders it in its own wire
// vocabulary (see FieldError.Render), so one rule can name the field of
// whichever API the request came through.
type Path []string

// Field is a one-element path.
func Field(name string) Path { return Path{name} }

// Child is p extended by one level; p is not modified.
func (p Path) Child(names ...string) Path {
	out := make(Path, 0, len(p)+len(names))
	return append(append(out, p...), names...)
}

// Index is p with its last element indexed: {"labels"}.Index(2) is
// {"labels[2]"}; p is not modified.
func (p Path) Index(i int) Path {
	out := p.Child()
	out[len(out)-1] = fmt.Sprintf("%s[%d]", out[len(out)-1], i)
	return out
}

// String joins the elements with dots.
func (p Path) String() string { return strings.Join(p, ".") }

// FieldError is bad input in one request field. It matches ErrInvalidInput.
type FieldError struct {
	Path Path
	Err  error
}

// ErrInvalidInput is matched by every FieldError, so one mapping turns all
// of them into INVALID_ARGUMENT.
var ErrInvalidInput = errors.New("invalid input")

// Invalid returns a FieldError for path with err as its reason.
func Invalid(path Path, err error) *FieldError { return &FieldError{Path: path, Err: err} }

func (e *FieldError) Error() string { return e.Render(nil) }
func (e *FieldError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalidInput.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidInput }

// Render prints "path: reason" with each path element passed through
// rename (nil keeps the domain's names).
func (e *FieldError) Render(rename func(Path, int) string) string {
	parts := make([]string, len(e.Path))
	for i, name := range e.Path {
		if rename != nil {
			name = rename(e.Path, i)
		}
		parts[i] = name
	}
	return strings.Join(parts, ".") + ": " + e.Err.Error()
}
