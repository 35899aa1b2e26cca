package golden

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// separator ends a case's input; two of them in a row open or close fenced
// expected output.
const separator = "----"

// Case is one case of a golden file.
type Case struct {
	Pos      string   // file:line of the command line
	Line     string   // the command line as written
	Command  string   // the first word of the command line
	Args     []string // the other words of the command line, split at white space
	Input    string   // the lines between the command line and ----, joined by "\n"
	Expected string   // the expected output: "" or lines each ending in "\n"
	Comments []string // the # lines since the previous case

	// outStart and outEnd bound the expected output's lines in the file,
	// fences included: the lines Format replaces.
	outStart, outEnd int
}

// InputLines returns the lines of the input; none when it is empty.
func (c *Case) InputLines() []string {
	if c.Input == "" {
		return nil
	}
	return strings.Split(c.Input, "\n")
}

// File is a parsed golden file.
type File struct {
	Path  string
	Cases []*Case
	lines []string // the file's lines, without their "\n"
}

// ReadFile reads and parses the golden file at path.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read golden file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses the text of a golden file; path names it in Case.Pos and
// in errors.
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path}
	if len(data) > 0 {
		f.lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	var comments []string
	for i := 0; i < len(f.lines); {
		line := f.lines[i]
		switch {
		case isBlank(line):
			i++
		case strings.HasPrefix(line, "#"):
			comments = append(comments, line)
			i++
		default:
			c, next, err := f.parseCase(i)
			if err != nil {
				return nil, err
			}
			c.Comments = comments
			comments = nil
			f.Cases = append(f.Cases, c)
			i = next
		}
	}
	return f, nil
}

// parseCase parses the case whose command is on line i (counted from 0)
// and returns it with the index of the line after it.
func (f *File) parseCase(i int) (*Case, int, error) {
	line := f.lines[i]
	words := strings.Fields(line)
	c := &Case{Pos: fmt.Sprintf("%s:%d", f.Path, i+1), Line: line, Command: words[0], Args: words[1:]}
	sep := i + 1
	for sep < len(f.lines) && f.lines[sep] != separator {
		sep++
	}
	if sep == len(f.lines) {
		return nil, 0, fmt.Errorf("%s: case %q has no ---- line after its input", c.Pos, c.Command)
	}
	c.Input = strings.Join(f.lines[i+1:sep], "\n")
	c.outStart = sep + 1
	var out []string
	if c.outStart < len(f.lines) && f.lines[c.outStart] == separator {
		end := closingFence(f.lines, c.outStart+1)
		if end < 0 {
			return nil, 0, fmt.Errorf("%s:%d: expected output opened by ---- ---- is not closed by ---- ----", f.Path, sep+1)
		}
		out = f.lines[c.outStart+1 : end]
		c.outEnd = end + 2
	} else {
		c.outEnd = c.outStart
		for c.outEnd < len(f.lines) && !isBlank(f.lines[c.outEnd]) {
			c.outEnd++
		}
		out = f.lines[c.outStart:c.outEnd]
	}
	var b strings.Builder
	for _, l := range out {
		b.WriteString(l + "\n")
	}
	c.Expected = b.String()
	return c, c.outEnd, nil
}

// closingFence returns the index of the first of two "----" lines in a row
// from lines[from], or -1.
func closingFence(lines []string, from int) int {
	for i := from; i+1 < len(lines); i++ {
		if lines[i] == separator && lines[i+1] == separator {
			return i
		}
	}
	return -1
}

// isBlank reports whether a line ends unfenced expected output (and is
// skipped between cases).
func isBlank(line string) bool { return strings.TrimSpace(line) == "" }

// ErrUnwritable is returned by Format for output the format cannot hold:
// a "----" "----" pair, or a last line "----", inside output that must be
// fenced.
var ErrUnwritable = errors.New("output holds lines ---- ---- or ends in ----, which golden files cannot hold")

// Format returns the file's text with the expected output of each case
// replaced by outputs[i], normalized as Run compares it. Everything else
// is kept byte for byte, except that a blank line is inserted where an
// unfenced output would otherwise run into the next case, and the text
// ends in a newline.
func (f *File) Format(outputs []string) ([]byte, error) {
	if len(outputs) != len(f.Cases) {
		return nil, fmt.Errorf("format %s: %d outputs for %d cases", f.Path, len(outputs), len(f.Cases))
	}
	var b strings.Builder
	prev := 0
	for i, c := range f.Cases {
		writeLines(&b, f.lines[prev:c.outStart])
		block, fenced, err := formatOutput(outputs[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Pos, err)
		}
		b.WriteString(block)
		prev = c.outEnd
		if !fenced && prev < len(f.lines) && !isBlank(f.lines[prev]) {
			b.WriteString("\n")
		}
	}
	writeLines(&b, f.lines[prev:])
	return []byte(b.String()), nil
}

func writeLines(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
}

// Normalize returns output as it is compared with Case.Expected: a
// non-empty output is given a final newline if it lacks one.
func Normalize(output string) string {
	if output != "" && !strings.HasSuffix(output, "\n") {
		return output + "\n"
	}
	return output
}

// formatOutput returns the lines that hold output after a case's ----
// line, and whether they are fenced.
func formatOutput(output string) (block string, fenced bool, err error) {
	output = Normalize(output)
	if output == "" {
		return "", false, nil
	}
	lines := strings.Split(strings.TrimSuffix(output, "\n"), "\n")
	if lines[0] != separator && !slices.ContainsFunc(lines, isBlank) {
		return output, false, nil
	}
	if lines[len(lines)-1] == separator || closingFence(lines, 0) >= 0 {
		return "", true, ErrUnwritable
	}
	return separator + "\n" + output + separator + "\n" + separator + "\n", true, nil
}
