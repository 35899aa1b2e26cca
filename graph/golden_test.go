package graph

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt")

// TestGolden runs every testdata/*.txt file. A file is a sequence of cases:
//
//	# comments and blank lines between cases are kept
//	command [args...]
//	input lines
//	----
//	expected output (up to the next blank line)
//
// Commands:
//
//	parse            ParseRelationship; prints String() or the error
//	parse-subject    ParseSubjectRef
//	parse-object     ParseObjectRef
//	sort-forward     parses one relationship a line; prints them in forward order
//	sort-reverse     likewise, reverse order
//	expired-at TIME  prints each relationship's ExpiredAt(TIME)
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) { runGoldenFile(t, path, runGoldenCase) })
	}
}

func runGoldenCase(cmd string, args []string, input string) string {
	switch cmd {
	case "parse":
		r, err := ParseRelationship(input)
		if err != nil {
			return "error: " + err.Error()
		}
		return r.String()
	case "parse-subject":
		s, err := ParseSubjectRef(input)
		if err != nil {
			return "error: " + err.Error()
		}
		return s.String()
	case "parse-object":
		o, err := ParseObjectRef(input)
		if err != nil {
			return "error: " + err.Error()
		}
		return o.String()
	case "sort-forward", "sort-reverse":
		rels, err := parseLines(input)
		if err != nil {
			return "error: " + err.Error()
		}
		if cmd == "sort-forward" {
			slices.SortFunc(rels, CompareForward)
		} else {
			slices.SortFunc(rels, CompareReverse)
		}
		var out []string
		for _, r := range rels {
			out = append(out, r.String())
		}
		return strings.Join(out, "\n")
	case "expired-at":
		if len(args) != 1 {
			return "error: expired-at needs one RFC 3339 time"
		}
		now, err := time.Parse(time.RFC3339Nano, args[0])
		if err != nil {
			return "error: " + err.Error()
		}
		rels, err := parseLines(input)
		if err != nil {
			return "error: " + err.Error()
		}
		var out []string
		for _, r := range rels {
			out = append(out, fmt.Sprintf("%v %s", r.ExpiredAt(now), r))
		}
		return strings.Join(out, "\n")
	}
	return "error: unknown command " + cmd
}

func parseLines(input string) ([]Relationship, error) {
	var rels []Relationship
	for line := range strings.Lines(input) {
		r, err := ParseRelationship(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return nil, err
		}
		rels = append(rels, r)
	}
	return rels, nil
}

// runGoldenFile runs the cases of one file through run, comparing output
// with the expected text, or rewriting it under -rewrite.
func runGoldenFile(t *testing.T, path string, run func(cmd string, args []string, input string) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var out strings.Builder
	cases := 0
	for i := 0; i < len(lines); {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			i++
			continue
		}
		caseLine := i + 1
		fields := strings.Fields(line)
		out.WriteString(line + "\n")
		i++
		var input []string
		for ; i < len(lines) && lines[i] != "----"; i++ {
			input = append(input, lines[i])
			out.WriteString(lines[i] + "\n")
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: case has no ---- line", path, caseLine)
		}
		out.WriteString("----\n")
		i++
		var expected []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			expected = append(expected, lines[i])
		}
		got := run(fields[0], fields[1:], strings.Join(input, "\n"))
		if strings.Contains(got, "\n\n") || strings.HasSuffix(got, "\n") || got == "" {
			t.Errorf("%s:%d: output %q is empty or has a blank line; golden output cannot hold it", path, caseLine, got)
		}
		out.WriteString(got + "\n")
		cases++
		if want := strings.Join(expected, "\n"); got != want && !*rewrite {
			t.Errorf("%s:%d: %s\ninput:\n%s\ngot:\n%s\nwant:\n%s", path, caseLine, line,
				strings.Join(input, "\n"), got, want)
		}
	}
	if cases == 0 {
		t.Errorf("%s: no cases", path)
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
