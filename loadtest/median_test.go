package loadtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pembadb/pemba/internal/golden"
)

// medianOf runs median.awk, as bench.sh does, on the rows in file.
func medianOf(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("awk", "-f", "median.awk", file).CombinedOutput()
	if err != nil {
		t.Fatalf("awk -f median.awk %s: %v\n%s", file, err, out)
	}
	return string(out)
}

// TestMedianGolden runs median.awk on the rows of each case of
// testdata/median.txt (command median, the rows as input) and compares
// its output with the case's.
func TestMedianGolden(t *testing.T) {
	golden.Run(t, "testdata/median.txt", func(t *testing.T, c *golden.Case) string {
		if c.Command != "median" {
			t.Fatalf("%s: unknown command %q", c.Pos, c.Command)
		}
		in := filepath.Join(t.TempDir(), "rows.md")
		if err := os.WriteFile(in, []byte(c.Input+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return medianOf(t, in)
	})
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
