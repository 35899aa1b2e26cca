package golden

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runTestCommand runs the commands of testdata/run and testdata/rewrite.
func runTestCommand(t *testing.T, c *Case) string {
	switch c.Command {
	case "echo":
		return c.Input
	case "args":
		return strings.Join(c.Args, "\n")
	case "lines":
		var b strings.Builder
		for i, l := range c.InputLines() {
			fmt.Fprintf(&b, "%d %q\n", i+1, l)
		}
		return b.String()
	}
	t.Fatalf("%s: unknown command %q", c.Pos, c.Command)
	return ""
}

func TestRun(t *testing.T) {
	Run(t, "testdata/run/*.txt", runTestCommand)
}

func TestParse(t *testing.T) {
	f, err := ReadFile("testdata/run/cases.txt")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		pos, line, command string
		args               []string
		input, expected    string
		comments           int
	}
	wants := []want{
		{"testdata/run/cases.txt:5", "echo", "echo", nil, "hello", "hello\n", 3},
		{"testdata/run/cases.txt:11", "args a  b\tc", "args", []string{"a", "b", "c"}, "", "a\nb\nc\n", 1},
		{"testdata/run/cases.txt:18", "lines", "lines", nil, "\nfirst\n\n\n  indented", "1 \"\"\n2 \"first\"\n3 \"\"\n4 \"\"\n5 \"  indented\"\n", 1},
		{"testdata/run/cases.txt:32", "echo", "echo", nil, "", "", 1},
		{"testdata/run/cases.txt:36", "echo", "echo", nil, "one\n\ntwo", "one\n\ntwo\n", 1},
		{"testdata/run/cases.txt:49", "args ---- middle ---- end", "args", []string{"----", "middle", "----", "end"}, "", "----\nmiddle\n----\nend\n", 1},
		{"testdata/run/cases.txt:59", "echo", "echo", nil, "last", "last\n", 1},
	}
	if len(f.Cases) != len(wants) {
		t.Fatalf("%d cases, want %d", len(f.Cases), len(wants))
	}
	for i, w := range wants {
		c := f.Cases[i]
		if c.Pos != w.pos {
			t.Errorf("case %d: Pos %q, want %q", i, c.Pos, w.pos)
		}
		got := fmt.Sprintf("%q %q %q %q %q %d", c.Line, c.Command, c.Args, c.Input, c.Expected, len(c.Comments))
		exp := fmt.Sprintf("%q %q %q %q %q %d", w.line, w.command, w.args, w.input, w.expected, w.comments)
		if got != exp {
			t.Errorf("case %d at %s:\n got %s\nwant %s", i, c.Pos, got, exp)
		}
	}
}

// TestRoundTrip formats every file with its own expected outputs, which
// must give back the file byte for byte.
func TestRoundTrip(t *testing.T) {
	for _, path := range Glob(t, "testdata/*/*.txt") {
		if filepath.Base(filepath.Dir(path)) == "bad" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(path, data)
		if err != nil {
			t.Fatal(err)
		}
		var outputs []string
		for _, c := range f.Cases {
			outputs = append(outputs, c.Expected)
		}
		got, err := f.Format(outputs)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(data) {
			t.Errorf("%s: formatting its own outputs changed it:\n%s", path, got)
		}
	}
}

// TestStrict checks that a case without ---- and an unclosed fence are
// errors naming the file and line.
func TestStrict(t *testing.T) {
	for path, want := range map[string]string{
		"testdata/bad/missing_separator.txt": `testdata/bad/missing_separator.txt:7: case "args" has no ---- line after its input`,
		"testdata/bad/unclosed_fence.txt":    `testdata/bad/unclosed_fence.txt:2: expected output opened by ---- ---- is not closed by ---- ----`,
	} {
		_, err := ReadFile(path)
		if err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", path, err, want)
		}
	}
}

// TestRewrite runs testdata/rewrite/before.txt with -rewrite on a copy and
// compares the result with after.txt: stale outputs replaced, fences added
// and removed, everything else kept.
func TestRewrite(t *testing.T) {
	data, err := os.ReadFile("testdata/rewrite/before.txt")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "before.txt")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	runFile(t, path, runTestCommand, true)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/rewrite/after.txt")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("rewritten file:\n%s\nwant:\n%s", got, want)
	}
	// A second rewrite changes nothing.
	runFile(t, path, runTestCommand, true)
	again, _ := os.ReadFile(path)
	if string(again) != string(got) {
		t.Errorf("second rewrite changed the file:\n%s", again)
	}
}

// TestFormatOutput checks which outputs are fenced and which cannot be
// written, and that each written output parses back to itself.
func TestFormatOutput(t *testing.T) {
	for _, tc := range []struct {
		output, block string
		err           error
	}{
		{"", "", nil},
		{"a", "a\n", nil},
		{"a\nb\n", "a\nb\n", nil},
		{"a\n\nb", "----\na\n\nb\n----\n----\n", nil},
		{"\na", "----\n\na\n----\n----\n", nil},
		{"a\n\n", "----\na\n\n----\n----\n", nil},
		{"a\n \t\nb", "----\na\n \t\nb\n----\n----\n", nil},
		{"----\na", "----\n----\na\n----\n----\n", nil},
		{"a\n----\nb", "a\n----\nb\n", nil},
		{"a\n\n----\n----\nb", "", ErrUnwritable},
		{"a\n\nb\n----", "", ErrUnwritable},
	} {
		block, _, err := formatOutput(tc.output)
		if !errors.Is(err, tc.err) || block != tc.block {
			t.Errorf("formatOutput(%q) = %q, %v; want %q, %v", tc.output, block, err, tc.block, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		f, err := Parse("t", []byte("cmd\n----\n"+block))
		if err != nil {
			t.Errorf("formatOutput(%q) gave %q, which does not parse: %v", tc.output, block, err)
			continue
		}
		if got := f.Cases[0].Expected; got != Normalize(tc.output) {
			t.Errorf("formatOutput(%q) parses back as %q", tc.output, got)
		}
	}
}
