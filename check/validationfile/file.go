package validationfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/pembadb/pemba/graph"
)

// Document is one world of a validation file.
type Document struct {
	// Path is the validation file's path; errors and failures name it.
	Path string
	// Schema is the schema source; SchemaPath names where it came from
	// (the validation file itself or schemaFile), SchemaLine is the line of
	// Path the inline schema starts on (0 for schemaFile), SchemaIndent the
	// columns of YAML indentation before each inline line.
	Schema       string
	SchemaPath   string
	SchemaLine   int
	SchemaIndent int
	// Relationships in file order.
	Relationships []Line[graph.Relationship]
	// Assertions in file order.
	Assertions []Assertion
	// Expectations in file order.
	Expectations []Expectation
}

// Line is a value with the file line it was read from.
type Line[T any] struct {
	Line  int
	Value T
}

// AssertionKind says what an assertion expects.
type AssertionKind string

// The assertion kinds of the `assertions` block.
const (
	AssertTrue     AssertionKind = "assertTrue"
	AssertFalse    AssertionKind = "assertFalse"
	AssertCaveated AssertionKind = "assertCaveated"
)

// Assertion is one `resource#permission@subject [with {json}]` entry.
type Assertion struct {
	Kind       AssertionKind
	Line       int
	Text       string
	Resource   graph.ObjectRef
	Permission string
	Subject    graph.SubjectRef
	Context    map[string]any
}

// Expectation is one key of the `validation` block: the exact set of
// subjects that hold Permission on Resource.
type Expectation struct {
	Line       int
	Resource   graph.ObjectRef
	Permission string
	Subjects   []ExpectedSubject
}

// ExpectedSubject is one `[subject] is <resource#relation>/...` line.
// Subject is the text between the brackets (`user:tom`, `user:tom[caveat]`,
// `user:* - {user:banned}`); Via lists the relations it comes from, empty
// when the line gives none.
type ExpectedSubject struct {
	Line    int
	Subject string
	Via     []string
}

// FileError is an unreadable or malformed validation file.
type FileError struct {
	Path string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// ReadFunc reads a file named by a validation file (schemaFile), relative
// paths already resolved against the validation file's directory.
type ReadFunc func(path string) ([]byte, error)

// Parse reads every YAML document of a validation file.
func Parse(path string, data []byte, read ReadFunc) ([]*Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*Document
	for {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &FileError{Path: path, Msg: "invalid YAML: " + err.Error()}
		}
		if len(root.Content) == 0 {
			continue
		}
		doc, err := parseDocument(path, data, root.Content[0], read)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	if len(docs) == 0 {
		return nil, &FileError{Path: path, Msg: "no YAML document in the file"}
	}
	return docs, nil
}

func parseDocument(path string, data []byte, n *yaml.Node, read ReadFunc) (*Document, error) {
	fail := func(at *yaml.Node, format string, args ...any) error {
		return &FileError{Path: path, Line: at.Line, Msg: fmt.Sprintf(format, args...)}
	}
	if n.Kind != yaml.MappingNode {
		return nil, fail(n, "a validation document is a mapping with keys schema, schemaFile, relationships, assertions, validation")
	}
	d := &Document{Path: path}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if seen[key.Value] {
			return nil, fail(key, "key %q appears twice", key.Value)
		}
		seen[key.Value] = true
		var err error
		switch key.Value {
		case "schema":
			if val.Kind != yaml.ScalarNode {
				return nil, fail(val, "schema must be a string (use a `|-` block)")
			}
			d.Schema, d.SchemaPath = val.Value, path
			d.SchemaLine, d.SchemaIndent = blockStart(data, val)
		case "schemaFile":
			if val.Kind != yaml.ScalarNode || val.Value == "" {
				return nil, fail(val, "schemaFile must be a file path")
			}
			p := val.Value
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			src, rerr := read(p)
			if rerr != nil {
				return nil, fail(val, "schemaFile %q: %v", val.Value, rerr)
			}
			d.Schema, d.SchemaPath = string(src), p
		case "relationships":
			err = d.parseRelationships(path, data, val)
		case "assertions":
			err = d.parseAssertions(path, val)
		case "validation":
			err = d.parseValidation(path, val)
		default:
			return nil, fail(key, "unknown key %q (expected schema, schemaFile, relationships, assertions, validation)", key.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	if seen["schema"] && seen["schemaFile"] {
		return nil, &FileError{Path: path, Line: n.Line, Msg: "give either schema or schemaFile, not both"}
	}
	if d.SchemaPath == "" {
		return nil, &FileError{Path: path, Line: n.Line, Msg: "missing schema (or schemaFile)"}
	}
	return d, nil
}

// blockStart finds where the text of a scalar starts in the file: for a
// block scalar (`|`, `|-`, `>`) the line after the indicator and its
// indentation; for a plain or quoted scalar its own line and column.
func blockStart(data []byte, n *yaml.Node) (line, indent int) {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		return n.Line, n.Column - 1
	}
	lines := strings.Split(string(data), "\n")
	for l := n.Line; l < len(lines); l++ { // lines[l] is file line l+1
		text := lines[l]
		if strings.TrimSpace(text) == "" {
			continue
		}
		return l + 1, len(text) - len(strings.TrimLeft(text, " \t"))
	}
	return n.Line + 1, 0
}

// isNull reports whether n is YAML's null: `key:` with nothing after it,
// `key: null` or `key: ~`. A section given as null is empty.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func (d *Document) parseRelationships(path string, data []byte, n *yaml.Node) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return &FileError{Path: path, Line: n.Line, Msg: "relationships must be a string with one relationship per line (use a `|-` block)"}
	}
	first, _ := blockStart(data, n)
	for i, text := range strings.Split(n.Value, "\n") {
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "//") {
			continue
		}
		line := first + i
		r, err := graph.ParseRelationship(text)
		if err != nil {
			return &FileError{Path: path, Line: line, Msg: err.Error()}
		}
		d.Relationships = append(d.Relationships, Line[graph.Relationship]{Line: line, Value: r})
	}
	return nil
}

func (d *Document) parseAssertions(path string, n *yaml.Node) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &FileError{Path: path, Line: n.Line, Msg: "assertions must be a mapping of assertTrue, assertFalse, assertCaveated to lists"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, list := n.Content[i], n.Content[i+1]
		kind := AssertionKind(key.Value)
		switch kind {
		case AssertTrue, AssertFalse, AssertCaveated:
		default:
			return &FileError{Path: path, Line: key.Line, Msg: fmt.Sprintf("unknown assertion kind %q (expected assertTrue, assertFalse or assertCaveated)", key.Value)}
		}
		if isNull(list) {
			continue // an empty list written as `assertFalse:` or `assertFalse: null`
		}
		if list.Kind != yaml.SequenceNode {
			return &FileError{Path: path, Line: list.Line, Msg: fmt.Sprintf("%s must be a list", kind)}
		}
		for _, item := range list.Content {
			a, err := parseAssertion(kind, item)
			if err != nil {
				return &FileError{Path: path, Line: item.Line, Msg: err.Error()}
			}
			d.Assertions = append(d.Assertions, a)
		}
	}
	return nil
}

// parseAssertion reads `resource#permission@subject` optionally followed by
// ` with {json context}`.
func parseAssertion(kind AssertionKind, n *yaml.Node) (Assertion, error) {
	if n.Kind != yaml.ScalarNode {
		return Assertion{}, fmt.Errorf("%s: each entry is a string `resource#permission@subject [with {json}]`", kind)
	}
	a := Assertion{Kind: kind, Line: n.Line, Text: strings.TrimSpace(n.Value)}
	rel, ctxText, hasCtx := strings.Cut(a.Text, " with ")
	r, err := graph.ParseRelationship(strings.TrimSpace(rel))
	if err != nil {
		return Assertion{}, fmt.Errorf("%s %q: %w", kind, a.Text, err)
	}
	if r.Caveat != nil || r.Expiration != nil {
		return Assertion{}, fmt.Errorf("%s %q: an assertion takes no caveat or expiration; give context with ` with {json}`", kind, a.Text)
	}
	if hasCtx {
		if err := jsonObject(strings.TrimSpace(ctxText), &a.Context); err != nil {
			return Assertion{}, fmt.Errorf("%s %q: context: %w", kind, a.Text, err)
		}
	}
	a.Resource, a.Permission, a.Subject = r.Resource, r.Relation, r.Subject
	return a, nil
}

func (d *Document) parseValidation(path string, n *yaml.Node) error {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return &FileError{Path: path, Line: n.Line, Msg: "validation must be a mapping of resource#permission to lists of `[subject] is <resource#relation>` lines"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, list := n.Content[i], n.Content[i+1]
		e := Expectation{Line: key.Line}
		objText, perm, ok := strings.Cut(key.Value, "#")
		obj, err := graph.ParseObjectRef(objText)
		if !ok || err != nil || perm == "" {
			return &FileError{Path: path, Line: key.Line, Msg: fmt.Sprintf("validation key %q must be resource#permission", key.Value)}
		}
		e.Resource, e.Permission = obj, perm
		if !isNull(list) && list.Kind != yaml.SequenceNode {
			return &FileError{Path: path, Line: list.Line, Msg: fmt.Sprintf("validation of %s must be a list", key.Value)}
		}
		for _, item := range list.Content {
			s, err := parseExpectedSubject(item.Value)
			if err != nil || item.Kind != yaml.ScalarNode {
				if err == nil {
					err = errors.New("each entry is a string")
				}
				return &FileError{Path: path, Line: item.Line, Msg: fmt.Sprintf("validation of %s: %v", key.Value, err)}
			}
			s.Line = item.Line
			e.Subjects = append(e.Subjects, s)
		}
		d.Expectations = append(d.Expectations, e)
	}
	return nil
}

// parseExpectedSubject reads `[subject] is <res#rel>/<res#rel>`; the
// `is ...` part is optional.
func parseExpectedSubject(text string) (ExpectedSubject, error) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "[") {
		return ExpectedSubject{}, fmt.Errorf("%q: expected `[subject] is <resource#relation>`", text)
	}
	depth, end := 0, -1
	for i, c := range text {
		if c == '[' {
			depth++
		} else if c == ']' {
			depth--
			if depth == 0 {
				end = i
				break
			}
		}
	}
	if end < 0 {
		return ExpectedSubject{}, fmt.Errorf("%q: unbalanced brackets", text)
	}
	s := ExpectedSubject{Subject: normalizeSubject(text[1:end])}
	rest := strings.TrimSpace(text[end+1:])
	if rest == "" {
		return s, nil
	}
	via, ok := strings.CutPrefix(rest, "is ")
	if !ok {
		return ExpectedSubject{}, fmt.Errorf("%q: expected `is <resource#relation>` after the subject", text)
	}
	for _, part := range strings.Split(strings.TrimSpace(via), "/") {
		part = strings.TrimSpace(part)
		if !strings.HasPrefix(part, "<") || !strings.HasSuffix(part, ">") {
			return ExpectedSubject{}, fmt.Errorf("%q: %q is not <resource#relation>", text, part)
		}
		s.Via = append(s.Via, part[1:len(part)-1])
	}
	return s, nil
}

// normalizeSubject removes insignificant spaces so `user:* - {user:a,user:b}`
// and `user:* - {user:a, user:b}` compare equal.
func normalizeSubject(s string) string {
	base, excl, ok := strings.Cut(s, " - ")
	if !ok {
		return strings.TrimSpace(s)
	}
	excl = strings.Trim(strings.TrimSpace(excl), "{}")
	var parts []string
	for _, p := range strings.Split(excl, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return strings.TrimSpace(base) + " - {" + strings.Join(parts, ", ") + "}"
}
