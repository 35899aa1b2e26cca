package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The syntax, SpiceDB's relationship string format:
//
//	relationship = object "#" relation "@" subject [caveat] [expiration]
//	object       = type ":" id
//	subject      = type ":" (id | "*") ["#" (relation | "...")]
//	caveat       = "[" caveat-name [":" json-object] "]"
//	expiration   = "[expiration:" rfc3339-timestamp "]"
//
// The two blocks may come in either order; String writes the caveat first.
// No whitespace is allowed outside the JSON context.

// ParseRelationship parses and validates
// `resource:id#relation@subject:id[#relation][caveat[:{json}]][expiration:time]`.
// It returns a *ParseError naming the offending part and column.
func ParseRelationship(s string) (Relationship, error) {
	p := parser{kind: "relationship", in: s}
	var r Relationship
	var err error
	// The resource ID runs to the '#' and may hold '@' (an e-mail address).
	// Without a '#' before the blocks, the relation is missing and the
	// first '@' starts the subject: stop there to say so.
	idStop := endOfResourceID
	if head, _, _ := strings.Cut(s, "["); !strings.Contains(head, "#") {
		idStop = endOfRelation
	}
	if r.Resource, err = p.object("resource", idStop, false); err != nil {
		return Relationship{}, err
	}
	if !p.eat('#') {
		return Relationship{}, p.fail("relation", "", p.pos, "expected '#' and a relation after the resource")
	}
	relStart := p.pos
	r.Relation = p.until(endOfRelation)
	if pr := relationProblem(r.Relation); !pr.ok() {
		return Relationship{}, p.failProblem("relation", r.Relation, relStart, pr)
	}
	if !p.eat('@') {
		return Relationship{}, p.fail("subject", "", p.pos, "expected '@' and a subject after the relation")
	}
	if r.Subject, err = p.subject(endOfSubjectID, endOfSubjectRel); err != nil {
		return Relationship{}, err
	}
	if err := p.blocks(&r); err != nil {
		return Relationship{}, err
	}
	return r, nil
}

// ParseSubjectRef parses and validates `type:id`, `type:id#relation`,
// `type:id#...` (Relation "") or the wildcard `type:*`.
func ParseSubjectRef(s string) (SubjectRef, error) {
	p := parser{kind: "subject", in: s}
	sub, err := p.subject(endOfLoneID, endOfInput)
	if err != nil {
		return SubjectRef{}, err
	}
	return sub, nil
}

// ParseObjectRef parses and validates `type:id`. The wildcard is not an
// object and is rejected.
func ParseObjectRef(s string) (ObjectRef, error) {
	p := parser{kind: "object", in: s}
	return p.object("object", endOfInput, false)
}

// MustParseRelationship is ParseRelationship for literals known to be valid,
// as in tests and examples; it panics on error.
func MustParseRelationship(s string) Relationship {
	r, err := ParseRelationship(s)
	if err != nil {
		panic(err)
	}
	return r
}

// parser is a cursor over one input. Every part is scanned up to the
// delimiters that may follow it and then validated as a whole, so an error
// shows the whole offending part rather than where scanning happened to stop.
type parser struct {
	kind string
	in   string
	pos  int
}

// until consumes and returns the text before the first byte in stop (or the
// rest of the input).
func (p *parser) until(stop *byteSet) string {
	start := p.pos
	i := start
	for i < len(p.in) && !stop[p.in[i]] {
		i++
	}
	p.pos = i
	return p.in[start:i]
}

// byteSet marks the delimiter bytes that end a part.
type byteSet [256]bool

func newByteSet(chars string) *byteSet {
	var s byteSet
	for i := 0; i < len(chars); i++ {
		s[chars[i]] = true
	}
	return &s
}

// The delimiters that may end each part. A type never contains any of them,
// so a type stops at the first; the other parts stop only where the syntax
// lets them end, so the whole offending text lands in the error.
var (
	endOfType       = newByteSet(":#@[")
	endOfResourceID = newByteSet("#[")
	endOfRelation   = newByteSet("@[")
	endOfSubjectID  = newByteSet("#[")
	endOfSubjectRel = newByteSet("[")
	endOfBlockName  = newByteSet(":]")
	endOfBlock      = newByteSet("]")
	endOfLoneID     = newByteSet("#")
	endOfInput      = newByteSet("")
)

// eat consumes c if it is next.
func (p *parser) eat(c byte) bool {
	if p.pos < len(p.in) && p.in[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *parser) fail(part, value string, at int, format string, args ...any) *ParseError {
	return &ParseError{Kind: p.kind, Input: p.in, Column: at + 1, Part: part, Value: value,
		Message: fmt.Sprintf(format, args...)}
}

// failProblem reports a name or ID problem found in value, which starts at
// offset at of the input.
func (p *parser) failProblem(part, value string, at int, pr problem) *ParseError {
	msg := pr.describe(value, func(i int) string { return fmt.Sprintf("column %d", at+i+1) })
	return p.fail(part, value, at, "%s", msg)
}

// object parses `type:id`, the id running up to a byte in idStop.
func (p *parser) object(role string, idStop *byteSet, allowWildcard bool) (ObjectRef, error) {
	typeStart := p.pos
	typ := p.until(endOfType)
	if pr := typeNameProblem(typ); !pr.ok() {
		return ObjectRef{}, p.failProblem(role+" type", typ, typeStart, pr)
	}
	if !p.eat(':') {
		return ObjectRef{}, p.fail(role+" id", "", p.pos, "expected ':' and an id after the %s type", role)
	}
	idStart := p.pos
	id := p.until(idStop)
	if id == Wildcard {
		if !allowWildcard {
			return ObjectRef{}, p.fail(role+" id", id, idStart, "the wildcard * may only be a subject id")
		}
	} else if pr := objectIDProblem(id); !pr.ok() {
		return ObjectRef{}, p.failProblem(role+" id", id, idStart, pr)
	}
	return ObjectRef{Type: typ, ID: id}, nil
}

// subject parses `type:id[#relation]`, the id and relation running up to a
// byte in idStop and relStop.
func (p *parser) subject(idStop, relStop *byteSet) (SubjectRef, error) {
	obj, err := p.object("subject", idStop, true)
	if err != nil {
		return SubjectRef{}, err
	}
	sub := SubjectRef{Object: obj}
	if !p.eat('#') {
		return sub, nil
	}
	relStart := p.pos
	rel := p.until(relStop)
	if rel == Ellipsis {
		return sub, nil
	}
	if pr := relationProblem(rel); !pr.ok() {
		return SubjectRef{}, p.failProblem("subject relation", rel, relStart, pr)
	}
	if sub.IsWildcard() {
		return SubjectRef{}, p.fail("subject relation", rel, relStart, "a wildcard subject cannot have a relation")
	}
	sub.Relation = rel
	return sub, nil
}

// blocks parses the optional caveat and expiration blocks to the end of the
// input, in either order, at most one of each.
func (p *parser) blocks(r *Relationship) error {
	for p.pos < len(p.in) {
		start := p.pos
		if !p.eat('[') {
			return p.fail("trailing text", p.in[start:], start,
				"expected the end, or a [caveat] or [expiration:...] block")
		}
		nameStart := p.pos
		name := p.until(endOfBlockName)
		if name == expirationBlock {
			t, err := p.expiration()
			if err != nil {
				return err
			}
			if r.Expiration != nil {
				return p.fail("expiration", p.in[nameStart+len(name)+1:p.pos], nameStart+len(name)+1,
					"the relationship already has an expiration")
			}
			r.Expiration = &t
		} else {
			if pr := caveatNameProblem(name); !pr.ok() {
				return p.failProblem("caveat name", name, nameStart, pr)
			}
			if r.Caveat != nil {
				return p.fail("caveat name", name, nameStart, "the relationship already has a caveat (%s)", r.Caveat.Name)
			}
			c := &Caveat{Name: name}
			if p.eat(':') {
				ctx, err := p.context()
				if err != nil {
					return err
				}
				c.Context = ctx
			}
			r.Caveat = c
		}
		if !p.eat(']') {
			return p.fail("']'", "", p.pos, "expected ']' to close the block opened at column %d", start+1)
		}
	}
	return nil
}

// expiration parses the timestamp after `[expiration:`.
func (p *parser) expiration() (time.Time, error) {
	if !p.eat(':') {
		return time.Time{}, p.fail("expiration", "", p.pos, "expected ':' and an RFC 3339 timestamp after %q", expirationBlock)
	}
	start := p.pos
	text := p.until(endOfBlock)
	t, pr := parseExpiration(text)
	if !pr.ok() {
		return time.Time{}, p.failProblem("expiration", text, start, pr)
	}
	return t, nil
}

// parseExpiration parses an RFC 3339 timestamp (fractional seconds and
// offsets allowed) into UTC, so equal instants are equal values.
func parseExpiration(text string) (time.Time, problem) {
	if text == "" {
		return time.Time{}, problem{"must not be empty", -1}
	}
	t, err := time.Parse(time.RFC3339, text)
	if err != nil {
		return time.Time{}, problem{"must be an RFC 3339 timestamp such as 2026-01-02T03:04:05Z", -1}
	}
	t = t.UTC()
	if pr := expirationProblem(t); !pr.ok() {
		return time.Time{}, pr
	}
	return t, noProblem
}

// context parses a caveat's JSON object context, starting at `{`. It returns
// nil for an empty object, so `[c]` and `[c:{}]` are the same relationship.
func (p *parser) context() (map[string]any, error) {
	start := p.pos
	end, status := jsonValueEnd(p.in, start)
	switch status {
	case jsonUnclosed:
		return nil, p.fail("caveat context", p.in[start:], start, "expected a JSON object ending in '}'")
	case jsonTooDeep:
		// end is the offset of the first bracket past the limit.
		return nil, p.fail("caveat context", p.in[start:end+1], start, "%s at column %d", tooDeep, end+1)
	}
	text := p.in[start:end]
	var ctx map[string]any
	if err := json.Unmarshal([]byte(text), &ctx); err != nil {
		msg := "invalid JSON: " + err.Error()
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			msg = fmt.Sprintf("invalid JSON at column %d: %s", start+int(se.Offset), se.Error())
		}
		return nil, p.fail("caveat context", text, start, "%s", msg)
	}
	p.pos = end
	if len(ctx) == 0 {
		return nil, nil
	}
	return ctx, nil
}

// jsonEndStatus is the outcome of jsonValueEnd.
type jsonEndStatus int

const (
	jsonEnd      jsonEndStatus = iota // the object ends
	jsonUnclosed                      // it does not end, or ends with ']'
	jsonTooDeep                       // it nests past MaxCaveatContextDepth
)

// jsonValueEnd finds the end of the JSON object starting at s[start]: the
// offset after its matching '}', skipping over strings. It does not validate
// the JSON (json.Unmarshal does); it only finds where the block's JSON ends,
// since strings inside may hold ']'. It stops at the first '{' or '[' nested
// deeper than MaxCaveatContextDepth, returning its offset and jsonTooDeep,
// so that no decoder recurses on hostile input.
func jsonValueEnd(s string, start int) (int, jsonEndStatus) {
	if start >= len(s) || s[start] != '{' {
		return 0, jsonUnclosed
	}
	depth := 0
	for i := start; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
			if depth > MaxCaveatContextDepth {
				return i, jsonTooDeep
			}
		case '}', ']':
			depth--
			if depth == 0 {
				if s[i] != '}' {
					return 0, jsonUnclosed
				}
				return i + 1, jsonEnd
			}
		}
	}
	return 0, jsonUnclosed
}
