package doctest

import (
	"fmt"
	"regexp"
	"strings"
)

// Block is a fenced code block of a Markdown document.
type Block struct {
	Line int    // line of the opening fence, from 1
	Lang string // first word of the info string ("sh", "zed", ""...)
	File string // the file=NAME word of the info string, or ""
	Text string // the lines between the fences, each ending in "\n", the fence's indentation removed
	// TextLine is the line of Text's first line.
	TextLine int
	// Skip is the reason of a skip marker directly before the fence, or ""
	// when the block has none.
	Skip string
}

// Shell reports whether the block holds shell commands.
func (b Block) Shell() bool {
	switch b.Lang {
	case "sh", "bash", "shell":
		return true
	}
	return false
}

var (
	fenceOpen  = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^`]*)$")
	skipMarker = regexp.MustCompile(`^\s*<!--\s*doc-test:\s*skip\s*\((.*\S.*)\)\s*-->\s*$`)
	fileWord   = regexp.MustCompile(`^file=(\S+)$`)
)

// Parse returns the fenced code blocks of the Markdown document md in
// order. name prefixes error positions.
func Parse(name, md string) ([]Block, error) {
	lines := strings.Split(strings.TrimSuffix(md, "\n"), "\n")
	var blocks []Block
	skip, skipLine := "", 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "<!--") && strings.Contains(t, "doc-test") {
			if skip != "" {
				return nil, fmt.Errorf("%s:%d: doc-test marker not directly followed by a code fence", name, skipLine)
			}
			m := skipMarker.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("%s:%d: malformed doc-test marker %q: want <!-- doc-test: skip (reason) -->", name, i+1, strings.TrimSpace(line))
			}
			skip, skipLine = strings.TrimSpace(m[1]), i+1
			continue
		}
		m := fenceOpen.FindStringSubmatch(line)
		if m == nil {
			if skip != "" {
				return nil, fmt.Errorf("%s:%d: doc-test marker not directly followed by a code fence", name, skipLine)
			}
			continue
		}
		b, end, err := readBlock(lines, i, m)
		if err != nil {
			return nil, fmt.Errorf("%s:%w", name, err)
		}
		b.Skip, skip = skip, ""
		blocks = append(blocks, b)
		i = end
	}
	if skip != "" {
		return nil, fmt.Errorf("%s:%d: doc-test marker not directly followed by a code fence", name, skipLine)
	}
	return blocks, nil
}

// readBlock reads the block whose opening fence is lines[open], matched
// as m, and returns it with the index of its closing fence.
func readBlock(lines []string, open int, m []string) (Block, int, error) {
	indent, fence, info := len(m[1]), m[2], strings.Fields(m[3])
	b := Block{Line: open + 1, TextLine: open + 2}
	for j, w := range info {
		if j == 0 {
			b.Lang = w
		} else if f := fileWord.FindStringSubmatch(w); f != nil {
			b.File = f[1]
		}
	}
	var text strings.Builder
	for j := open + 1; j < len(lines); j++ {
		l := lines[j]
		if t := strings.TrimSpace(l); strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == "" {
			b.Text = text.String()
			return b, j, nil
		}
		// Content is indented like its fence (a block in a list item);
		// remove as much of that indentation as the line has.
		k := 0
		for k < indent && k < len(l) && l[k] == ' ' {
			k++
		}
		text.WriteString(l[k:])
		text.WriteByte('\n')
	}
	return Block{}, 0, fmt.Errorf("%d: code fence %s is never closed", open+1, fence)
}
