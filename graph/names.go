package graph

import (
	"fmt"
	"unicode/utf8"
)

// The naming rules are SpiceDB's, so data and schemas move between the two
// unchanged:
//
//   - type and caveat names: one or more `/`-separated segments, e.g.
//     `document`, `tenant/document`, `a_b/c_d/e_f`. A prefix segment matches
//     [a-z][a-z0-9_]{1,61}[a-z0-9] and the last segment
//     [a-z][a-z0-9_]{1,62}[a-z0-9]; at most 128 bytes in all.
//   - relation names: [a-z][a-z0-9_]{1,62}[a-z0-9] (3 to 64 bytes). The
//     rule is stricter than the looser [a-z][a-z0-9_]{1,62} sometimes quoted:
//     a name may not end in `_`, exactly as in SpiceDB.
//   - object IDs: [a-zA-Z0-9/_|\-=+@.]{1,1024}, or `*` as a whole subject ID.
//     This is SpiceDB's class plus `@` and `.`, so e-mail addresses and
//     host names are IDs as they are (`user:ada@example.com`); every ID
//     SpiceDB accepts is accepted here.
const (
	TypeNamePattern = `([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]`
	RelationPattern = `[a-z][a-z0-9_]{1,62}[a-z0-9]`
	ObjectIDPattern = `[a-zA-Z0-9/_|\-=+@.]{1,1024}`

	MaxTypeNameBytes = 128
	MaxRelationBytes = 64
	MaxObjectIDBytes = 1024
)

// expirationBlock is the name that opens an expiration block,
// `[expiration:...]`. No caveat may take it, so a block is never ambiguous.
const expirationBlock = "expiration"

// problem says why a name or ID is invalid: a message and, when one byte is
// to blame, its offset in the value (otherwise -1).
type problem struct {
	msg string
	at  int
}

func (p problem) ok() bool { return p.msg == "" }

// describe renders the problem; where places the offending byte for the
// reader (a column in a parsed string, or a byte offset in a value).
func (p problem) describe(value string, where func(at int) string) string {
	if p.at < 0 || p.at >= len(value) {
		return p.msg
	}
	_, size := utf8.DecodeRuneInString(value[p.at:])
	return fmt.Sprintf("%s (found %q at %s)", p.msg, value[p.at:p.at+size], where(p.at))
}

var noProblem = problem{at: -1}

// typeNameProblem checks a type or caveat name.
func typeNameProblem(s string) problem {
	switch {
	case s == "":
		return problem{"must not be empty", -1}
	case len(s) > MaxTypeNameBytes:
		return problem{fmt.Sprintf("must be at most %d bytes, got %d", MaxTypeNameBytes, len(s)), -1}
	}
	segStart := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '/' {
			continue
		}
		last := i == len(s)
		maxLen := 63 // prefix segment: 1 + {1,61} + 1
		if last {
			maxLen = 64
		}
		if at := segmentProblem(s[segStart:i], maxLen); at != -2 {
			if at < 0 {
				return problem{fmt.Sprintf("must match %s (segment %q is not 3 to %d bytes)",
					TypeNamePattern, s[segStart:i], maxLen), -1}
			}
			return problem{"must match " + TypeNamePattern, at + segStart}
		}
		segStart = i + 1
	}
	return noProblem
}

// relationProblem checks a relation name (never the ellipsis).
func relationProblem(s string) problem {
	if s == "" {
		return problem{"must not be empty", -1}
	}
	if at := segmentProblem(s, MaxRelationBytes); at != -2 {
		if at < 0 {
			return problem{fmt.Sprintf("must match %s (3 to %d bytes)", RelationPattern, MaxRelationBytes), -1}
		}
		return problem{"must match " + RelationPattern, at}
	}
	return noProblem
}

// segmentProblem checks s against [a-z][a-z0-9_]{1,maxLen-2}[a-z0-9]. It
// returns -2 when s matches, the offset of the first bad byte, or -1 when
// only the length is wrong.
func segmentProblem(s string, maxLen int) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		lower := c >= 'a' && c <= 'z'
		digit := c >= '0' && c <= '9'
		switch {
		case i == 0 && !lower:
			return i
		case i == len(s)-1 && !lower && !digit:
			return i
		case !lower && !digit && c != '_':
			return i
		}
	}
	if len(s) < 3 || len(s) > maxLen {
		return -1
	}
	return -2
}

// objectIDProblem checks an object ID; the wildcard is the caller's business.
func objectIDProblem(s string) problem {
	switch {
	case s == "":
		return problem{"must not be empty", -1}
	case len(s) > MaxObjectIDBytes:
		return problem{fmt.Sprintf("must be at most %d bytes, got %d", MaxObjectIDBytes, len(s)), -1}
	}
	for i := 0; i < len(s); i++ {
		if !idByte[s[i]] {
			return problem{"must match " + ObjectIDPattern, i}
		}
	}
	return noProblem
}

// idByte marks the bytes allowed in an object ID.
var idByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "/_|-=+@." {
		t[c] = true
	}
	return t
}()

// caveatNameProblem checks a caveat name: a type-style name that is not the
// reserved block name "expiration".
func caveatNameProblem(s string) problem {
	if s == expirationBlock {
		return problem{`"expiration" is reserved for the expiration block`, -1}
	}
	return typeNameProblem(s)
}
