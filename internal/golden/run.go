package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Rewrite is the -rewrite flag: rewrite the expected output of golden
// files with the actual output instead of comparing them.
var Rewrite = flag.Bool("rewrite", false, "rewrite the expected output of golden test files")

// Func runs one case and returns its actual output. t is the test of the
// case's file: cases of a file run in order and may share state.
type Func func(t *testing.T, c *Case) string

// Run runs every file matching pattern (filepath.Glob) in a subtest named
// after the file, failing when none matches.
func Run(t *testing.T, pattern string, run Func) {
	t.Helper()
	for _, path := range Glob(t, pattern) {
		t.Run(filepath.Base(path), func(t *testing.T) { RunFile(t, path, run) })
	}
}

// Glob returns the files matching pattern, failing the test when there
// are none.
func Glob(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatalf("golden files %s: %v", pattern, err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden files match %s", pattern)
	}
	return files
}

// RunFile runs the cases of the file at path in order and compares each
// output with the expected one; with -rewrite it writes the outputs into
// the file instead. A file that does not parse, or holds no case, fails
// the test.
func RunFile(t *testing.T, path string, run Func) {
	t.Helper()
	runFile(t, path, run, *Rewrite)
}

// CompareFile is RunFile that compares even under -rewrite: for a file run
// several times (against several datastores, say), where one run rewrites
// it and the others must agree.
func CompareFile(t *testing.T, path string, run Func) {
	t.Helper()
	runFile(t, path, run, false)
}

func runFile(t *testing.T, path string, run Func, rewrite bool) {
	t.Helper()
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	outputs := make([]string, len(f.Cases))
	for i, c := range f.Cases {
		outputs[i] = Normalize(run(t, c))
		if !rewrite && outputs[i] != c.Expected {
			t.Errorf("%s: %s\ninput:\n%s\ngot:\n%swant:\n%s", c.Pos, c.Line, c.Input, outputs[i], c.Expected)
		}
	}
	if !rewrite {
		return
	}
	data, err := f.Format(outputs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("rewrite %s: %v", path, err)
	}
}
