package doctest

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// Ellipsis in expected output stands for any text within a line; a line
// of only Ellipsis stands for any number of lines.
const Ellipsis = "…"

// masks replace what differs between runs of the same commands, in order.
var masks = []struct {
	re   *regexp.Regexp
	with string
}{
	// Times first: a time would otherwise pass for a zookie.
	{regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)`), `<time>`},
	// Zookies and cursors in JSON, and zookies after the words that print
	// them ("read at: Z", "(revision Z)"). A zookie is base64url with at
	// least one capital, digit, - or _, which tells it from a word.
	{regexp.MustCompile(`"(token|cursor)":"[A-Za-z0-9_-]+"`), `"$1":"<token>"`},
	{regexp.MustCompile(`\b(at:|revision|from:|to:) [a-z]*[A-Z0-9_-][A-Za-z0-9_-]*`), `$1 <token>`},
	{regexp.MustCompile(`\bpemba-dev-[0-9a-f]+\b`), `<token>`},
	// Hashes (the audit log's head is REVISION:HASH).
	{regexp.MustCompile(`\b(?:[A-Za-z0-9_-]+:)?[0-9a-f]{32,}\b`), `<hash>`},
	{regexp.MustCompile(`\b\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h)(?:\d+(?:\.\d+)?(?:ns|µs|us|ms|s|m|h))*\b`), `<duration>`},
}

// Mask replaces the parts of s that differ between runs of the same
// commands: zookies, cursors and tokens by <token>, hashes by <hash>,
// times by <time>, durations by <duration>.
func Mask(s string) string {
	for _, m := range masks {
		s = m.re.ReplaceAllString(s, m.with)
	}
	return s
}

// Match reports whether got, a command's output, is the expected output
// want, both masked and with trailing white space of each line ignored.
func Match(want []string, got string) bool {
	return pattern(want).MatchString(normalize(Mask(got)))
}

// Normalize is the output Match compares: masked, with trailing white
// space removed from each line, each line that is a JSON value compacted
// (protojson varies its spacing on purpose) and the final newline
// dropped, for showing next to the expected output in a failure.
func Normalize(got string) string { return normalize(Mask(got)) }

func normalize(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = compactJSON(strings.TrimRight(l, " \t"))
	}
	return strings.Join(lines, "\n")
}

// compactJSON returns line without insignificant white space if it is a
// JSON object or array, else line as it is.
func compactJSON(line string) string {
	if !strings.HasPrefix(line, "{") && !strings.HasPrefix(line, "[") {
		return line
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(line)) != nil {
		return line
	}
	return b.String()
}

// pattern compiles expected output into a regexp matching the whole
// output.
func pattern(want []string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`\A`)
	sep := false // the next line needs a newline before it
	for i, l := range want {
		l = compactJSON(strings.TrimRight(Mask(l), " \t"))
		switch {
		case l == Ellipsis && len(want) == 1:
			b.WriteString(`(?s:.*)`)
		case l == Ellipsis && i == 0:
			// Any number of lines, each with its newline.
			b.WriteString(`(?:[^\n]*\n)*?`)
			sep = false
		case l == Ellipsis:
			// Any number of lines, each after a newline.
			b.WriteString(`(?:\n[^\n]*)*?`)
			sep = true
		default:
			if sep {
				b.WriteString(`\n`)
			}
			for j, p := range strings.Split(l, Ellipsis) {
				if j > 0 {
					b.WriteString(`[^\n]*?`)
				}
				b.WriteString(regexp.QuoteMeta(p))
			}
			sep = true
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}
