package graph

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/internal/golden"
)

// TestGolden runs the cases of testdata/*.txt (see internal/golden for
// the format). Commands:
//
//	parse            ParseRelationship; prints String() or the error
//	parse-subject    ParseSubjectRef
//	parse-object     ParseObjectRef
//	sort-forward     parses one relationship a line; prints them in forward order
//	sort-reverse     likewise, reverse order
//	expired-at TIME  prints each relationship's ExpiredAt(TIME)
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", func(_ *testing.T, c *golden.Case) string {
		return runGoldenCase(c.Command, c.Args, c.Input)
	})
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
