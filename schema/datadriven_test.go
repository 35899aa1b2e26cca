package schema

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A small data-driven test harness. A test file holds cases:
//
//	# comment
//	command arg...
//	input lines
//	----
//	expected output (ends at a blank line)
//
// Expected output that contains blank lines is fenced by a second "----"
// after the first and a "----" "----" pair after it. Run with -rewrite to
// regenerate every expected output from the code.

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of data-driven tests")

type testCase struct {
	pos      string // file:line of the command
	comments []string
	command  string
	args     []string
	input    string
	expected string
}

func readCases(t testing.TB, path string) []*testCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	var cases []*testCase
	var comments []string
	for i := 0; i < len(lines); {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			i++
			continue
		}
		if strings.HasPrefix(line, "#") {
			comments = append(comments, line)
			i++
			continue
		}
		fields := strings.Fields(line)
		c := &testCase{pos: path + ":" + strconv.Itoa(i+1), comments: comments, command: fields[0], args: fields[1:]}
		comments = nil
		i++
		var input []string
		for i < len(lines) && lines[i] != "----" {
			input = append(input, lines[i])
			i++
		}
		if i >= len(lines) {
			t.Fatalf("%s: missing ----", c.pos)
		}
		i++
		c.input = strings.Join(input, "\n")
		var out []string
		if i < len(lines) && lines[i] == "----" {
			i++
			for i+1 < len(lines) && !(lines[i] == "----" && lines[i+1] == "----") {
				out = append(out, lines[i])
				i++
			}
			i += 2
		} else {
			for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
				out = append(out, lines[i])
				i++
			}
		}
		if len(out) > 0 {
			c.expected = strings.Join(out, "\n") + "\n"
		}
		cases = append(cases, c)
	}
	return cases
}

func writeCases(t *testing.T, path string, cases []*testCase) {
	t.Helper()
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteByte('\n')
		}
		for _, cm := range c.comments {
			b.WriteString(cm + "\n")
		}
		b.WriteString(strings.Join(append([]string{c.command}, c.args...), " ") + "\n")
		if c.input != "" {
			b.WriteString(c.input + "\n")
		}
		b.WriteString("----\n")
		out := c.expected
		if strings.Contains(out, "\n\n") || strings.HasPrefix(out, "\n") {
			b.WriteString("----\n" + out + "----\n----\n")
		} else {
			b.WriteString(out)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runDataDriven runs every testdata/*.txt file through run.
func runDataDriven(t *testing.T, run func(t *testing.T, c *testCase) string) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases := readCases(t, path)
			for _, c := range cases {
				got := run(t, c)
				if got != "" && !strings.HasSuffix(got, "\n") {
					got += "\n"
				}
				if *rewrite {
					c.expected = got
					continue
				}
				if got != c.expected {
					t.Errorf("%s: %s\ninput:\n%s\ngot:\n%s\nwant:\n%s", c.pos, c.command, c.input, got, c.expected)
				}
			}
			if *rewrite {
				writeCases(t, path, cases)
			}
		})
	}
}
