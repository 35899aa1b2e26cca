package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The golden files are CLI sessions against one fresh server. Each case is
//
//	command args...
//	input lines (optional)
//	----
//	expected output
//
// separated by blank lines; # lines are comments. Commands:
//
//	file NAME          writes the input to NAME in the session directory
//	pemba ARGS...      runs the CLI (stdin: the input); prints its stdout,
//	                   its stderr prefixed "stderr: ", and "exit N" unless 0
//	http METHOD PATH   sends the input as an HTTP/JSON request body
//
// Arguments are split like a shell's words (single and double quotes).
// $ZOOKIE is the last zookie a command printed, $DIR the session
// directory. Zookies and cursors are masked. Every file runs against the
// memory, embedded and PostgreSQL datastores and must give the same output.

func TestGolden(t *testing.T) {
	if raceEnabled {
		// Golden sessions check output, not concurrency, and a race-built
		// CLI per command is slow; the concurrent tests still run.
		t.Skip("golden sessions run without -race")
	}
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, kind := range []string{"memory", "embedded", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			if testing.Short() && kind != "memory" {
				t.Skip("-short: memory datastore only")
			}
			for _, file := range files {
				t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
					srv := startServer(t, datastoreArgs(t, kind)...)
					sess := &session{srv: srv, dir: t.TempDir()}
					runGoldenFile(t, file, *rewrite && kind == "memory", sess.run)
				})
			}
		})
	}
}

// session is the state of one golden file's run.
type session struct {
	srv    *server
	dir    string
	zookie string
}

func (s *session) run(cmd string, args []string, input string) string {
	t := s.srv.t
	for i, a := range args {
		a = strings.ReplaceAll(a, "$ZOOKIE", s.zookie)
		args[i] = strings.ReplaceAll(a, "$DIR", s.dir)
	}
	switch cmd {
	case "file":
		if len(args) != 1 {
			return "file: want NAME"
		}
		if err := os.WriteFile(filepath.Join(s.dir, args[0]), []byte(input+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return "wrote " + args[0]
	case "pemba":
		var stdin string
		if input != "" {
			stdin = input + "\n"
		}
		r := runCLIIn(t, s.dir, []string{"PEMBA_ENDPOINT=" + s.srv.grpcAddr, "PEMBA_TOKEN=" + tokenSecret}, stdin, args...)
		if z := lastZookie(r.stderr); z != "" {
			s.zookie = z
		}
		var out []string
		if r.stdout != "" {
			out = append(out, strings.TrimSuffix(r.stdout, "\n"))
		}
		for line := range strings.Lines(r.stderr) {
			out = append(out, "stderr: "+strings.TrimSuffix(line, "\n"))
		}
		if r.code != 0 {
			out = append(out, "exit "+itoa(r.code))
		}
		if len(out) == 0 {
			return "(no output)"
		}
		return noBlankLines(mask(strings.Join(out, "\n")))
	case "http":
		if len(args) != 2 {
			return "http: want METHOD PATH"
		}
		code, body := s.srv.httpDo(args[0], args[1], input)
		// protojson varies its spacing on purpose; compact it.
		var compact bytes.Buffer
		if json.Compact(&compact, []byte(body)) == nil {
			body = compact.String()
		}
		return noBlankLines(mask("status " + itoa(code) + "\n" + strings.TrimSuffix(body, "\n")))
	}
	return "unknown command " + cmd
}

func itoa(n int) string { return strconv.Itoa(n) }

// noBlankLines marks empty lines, which the golden format cannot hold.
func noBlankLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = "<blank>"
		}
	}
	return strings.Join(lines, "\n")
}

// splitWords splits a command line like a shell: whitespace separates
// words; single quotes keep everything; double quotes keep everything but
// \" and \\.
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				cur.WriteByte(line[i])
			}
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// runGoldenFile runs the cases of one file through run, comparing output
// with the expected text, or rewriting the file when rewrite is set.
func runGoldenFile(t *testing.T, path string, rewrite bool, run func(cmd string, args []string, input string) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var out strings.Builder
	cases := 0
	for i := 0; i < len(lines); {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			i++
			continue
		}
		caseLine := i + 1
		words := splitWords(line)
		out.WriteString(line + "\n")
		i++
		var input []string
		for ; i < len(lines) && lines[i] != "----"; i++ {
			input = append(input, lines[i])
			out.WriteString(lines[i] + "\n")
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: case has no ---- line", path, caseLine)
		}
		out.WriteString("----\n")
		i++
		var expected []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			expected = append(expected, lines[i])
		}
		got := run(words[0], words[1:], strings.Join(input, "\n"))
		out.WriteString(got + "\n")
		cases++
		if want := strings.Join(expected, "\n"); got != want && !rewrite {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, caseLine, line, got, want)
		}
	}
	if cases == 0 {
		t.Errorf("%s: no cases", path)
	}
	if rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
