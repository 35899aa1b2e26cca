package doctest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pembadb/pemba/internal/golden"
)

// TestGolden runs testdata/*.txt: "parse" prints the blocks of a Markdown
// document and the commands of its shell blocks, "mask" masks its input.
func TestGolden(t *testing.T) {
	golden.Run(t, "testdata/*.txt", func(t *testing.T, c *golden.Case) string {
		switch c.Command {
		case "parse":
			return printParse(c.Input + "\n")
		case "mask":
			return Mask(c.Input) + "\n"
		}
		t.Fatalf("%s: unknown command %q", c.Pos, c.Command)
		return ""
	})
}

func printParse(md string) string {
	blocks, err := Parse("doc.md", md)
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	for _, bl := range blocks {
		fmt.Fprintf(&b, "block line=%d lang=%q file=%q skip=%q\n", bl.Line, bl.Lang, bl.File, bl.Skip)
		if !bl.Shell() {
			fmt.Fprintf(&b, "  text %q\n", bl.Text)
			continue
		}
		cmds, err := Commands(bl)
		if err != nil {
			fmt.Fprintf(&b, "  error: %v\n", err)
			continue
		}
		for _, c := range cmds {
			fmt.Fprintf(&b, "  command line=%d %q\n", c.Line, c.Text)
			for _, w := range c.Want {
				fmt.Fprintf(&b, "    want %q\n", w)
			}
		}
	}
	return b.String()
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name string
		want []string
		got  string
		ok   bool
	}{
		{"exact", []string{"has permission"}, "has permission\n", true},
		{"different", []string{"has permission"}, "no permission\n", false},
		{"trailing spaces", []string{"a  b"}, "a  b   \n", true},
		{"more output", []string{"a"}, "a\nb\n", false},
		{"less output", []string{"a", "b"}, "a\n", false},
		{"empty line", []string{"a", "", "b"}, "a\n\nb\n", true},
		{"ellipsis in a line", []string{`{"path":{…,"text":"x"}}`}, `{"path":{"a":1,"text":"x"}}` + "\n", true},
		{"ellipsis stays in its line", []string{"a…b"}, "a\nb\n", false},
		{"ellipsis lines between", []string{"a", "…", "d"}, "a\nb\nc\nd\n", true},
		{"ellipsis no lines between", []string{"a", "…", "d"}, "a\nd\n", true},
		{"ellipsis lines first", []string{"…", "d"}, "a\nb\nd\n", true},
		{"ellipsis lines last", []string{"a", "…"}, "a\nb\nc\n", true},
		{"ellipsis nothing last", []string{"a", "…"}, "a\n", true},
		{"ellipsis only", []string{"…"}, "a\nb\n", true},
		{"times masked", []string{"2026-12-04T20:39:01Z  user:dana"}, "2030-01-02T03:04:05.123Z  user:dana\n", true},
		{"zookies masked", []string{`{"writtenAt":{"token":"AXMuTad4g4tBAg"}}`}, `{"writtenAt":{"token":"AY2-ZAjf5cGUBQ"}}` + "\n", true},
		{"regexp characters are literal", []string{"a.b (c)*"}, "axb (c)*\n", false},
		{"JSON spacing", []string{`{"a":1,"b":[2,3]}`}, `{"a":1, "b":[2,  3]}` + "\n", true},
		{"JSON spacing with ellipsis", []string{`{"a":{…},"b":"x"}`}, `{"a":{"c": 1}, "b":"x"}` + "\n", true},
		{"not JSON", []string{`{"a": 1`}, `{"a":1` + "\n", false},
		{"no output", nil, "", true},
		{"no output wanted, some given", []string{}, "x\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(tt.want, tt.got); got != tt.ok {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.want, tt.got, got, tt.ok)
			}
		})
	}
}

// FuzzParse: no document makes Parse or Commands panic, and every command
// starts on a line of its block.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"```sh\necho 'a\nb'\n# a\n```\n",
		"<!-- doc-test: skip (x) -->\n```sh\ncat <<EOF\nx\nEOF\n```\n",
		"  ```zed file=a.zed\n  definition user {}\n  ```\n",
		"```sh\nx=$(echo \"$(date)\" \\\n)\n```\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		blocks, err := Parse("doc.md", md)
		if err != nil {
			return
		}
		for _, b := range blocks {
			if !b.Shell() {
				continue
			}
			cmds, err := Commands(b)
			if err != nil {
				continue
			}
			lines := strings.Count(b.Text, "\n")
			for _, c := range cmds {
				if c.Line < b.TextLine || c.Line >= b.TextLine+lines {
					t.Fatalf("command at line %d outside its block (lines %d to %d)", c.Line, b.TextLine, b.TextLine+lines-1)
				}
			}
		}
	})
}
