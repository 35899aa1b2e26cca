package dataset

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt")

// goldenCase is one case of a testdata file:
//
//	# comment
//	command key=value ...
//	----
//	expected output
//
// Cases are separated by blank lines; expected output runs until the next
// blank line.
type goldenCase struct {
	cmd      string
	args     map[string]string
	expected string
	line     int
}

// runGolden runs every case in file through run and compares its output,
// or rewrites the file with -rewrite.
func runGolden(t *testing.T, file string, run func(t *testing.T, c goldenCase) string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		c := goldenCase{line: i + 1, args: map[string]string{}}
		fields := strings.Fields(line)
		c.cmd = fields[0]
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			c.args[k] = v
		}
		out.WriteString(line + "\n")
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: expected ---- after the command", file, c.line)
		}
		var exp []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
			exp = append(exp, lines[i])
		}
		i-- // the blank line is written by the loop
		c.expected = strings.Join(exp, "\n")
		got := strings.TrimRight(run(t, c), "\n")
		out.WriteString("----\n" + got + "\n")
		if !*rewrite && got != c.expected {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", file, c.line, line, got, c.expected)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// intArg reads an integer argument, or def when it is absent.
func intArg(t *testing.T, c goldenCase, key string, def int) int {
	t.Helper()
	v, ok := c.args[key]
	if !ok {
		return def
	}
	var n int
	if _, err := fmt.Sscanf(v, "%d", &n); err != nil {
		t.Fatalf("line %d: %s=%q: %v", c.line, key, v, err)
	}
	return n
}
