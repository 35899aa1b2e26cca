package loadtest

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the .golden files with the current output")

// medianOf runs median.awk, as bench.sh does, on the rows in file.
func medianOf(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("awk", "-f", "median.awk", file).CombinedOutput()
	if err != nil {
		t.Fatalf("awk -f median.awk %s: %v\n%s", file, err, out)
	}
	return string(out)
}

// TestMedianGolden runs median.awk on each testdata/median/*.md, rows of
// several rounds, and compares the result with the .golden file beside it.
func TestMedianGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/median/*.md")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in testdata/median: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			got := medianOf(t, in)
			golden := strings.TrimSuffix(in, ".md") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -rewrite to update)\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestMedianOfIdenticalRounds feeds median.awk the rows Markdown renders,
// three times over: the median of equal runs is the run, so every cell
// must come back as Markdown wrote it, the count marked as of 3.
func TestMedianOfIdenticalRounds(t *testing.T) {
	rows := sampleReport().Markdown()
	in := filepath.Join(t.TempDir(), "rounds.md")
	if err := os.WriteFile(in, []byte(MarkdownHeader+rows+"<!-- a comment -->\n"+rows+rows), 0o644); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, line := range strings.SplitAfter(rows, "\n") {
		if line == "" {
			continue
		}
		cells := strings.Split(line, " | ")
		cells[4] += " (of 3)"
		want.WriteString(strings.Join(cells, " | "))
	}
	if got := medianOf(t, in); got != want.String() {
		t.Errorf("got:\n%s\nwant:\n%s", got, want.String())
	}
}
