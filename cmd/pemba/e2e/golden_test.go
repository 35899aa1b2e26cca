package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pembadb/pemba/internal/golden"
)

// The golden files are CLI sessions against one fresh server, in the
// format of internal/golden; each case is a command, its input, ---- and
// its expected output. Commands:
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
					// The memory run rewrites the file under -rewrite;
					// the others must agree with it.
					if kind == "memory" {
						golden.RunFile(t, file, sess.run)
					} else {
						golden.CompareFile(t, file, sess.run)
					}
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

func (s *session) run(_ *testing.T, c *golden.Case) string {
	t := s.srv.t
	words := splitWords(c.Line)
	cmd, args, input := words[0], words[1:], c.Input
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
		return mask(strings.Join(out, "\n"))
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
		return mask("status " + itoa(code) + "\n" + strings.TrimSuffix(body, "\n"))
	}
	return "unknown command " + cmd
}

func itoa(n int) string { return strconv.Itoa(n) }

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
