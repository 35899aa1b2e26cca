//go:build !race

// The race pass of make test leaves this file out: the commands are the
// real binary's, whose concurrency the other end-to-end tests cover under
// the race detector, and a race-enabled CLI starts so slowly that the
// README's sixty commands would take minutes instead of seconds.

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pembadb/pemba/internal/doctest"
)

// userDocs are the documents whose examples TestDocs runs, relative to
// the repository's root.
var userDocs = []string{"README.md", "SECURITY.md", "ARCHITECTURE.md"}

// TestDocs runs every shell block of the user documents in order, in one
// bash session, against a fresh `pemba serve --dev` (what `make run`
// starts) with `pemba` first on PATH, and compares each command's output
// with the one the document shows under it (see package doctest). Each
// zed and YAML block is saved (as its file=NAME, when it has one) and must
// pass `pemba validate`. A block after a `<!-- doc-test: skip (reason) -->`
// line is not run. A failure names the document's line.
//
// Commands run in the server's working directory, like `make run`'s
// repository root, with PEMBA_ENDPOINT and PEMBA_TOKEN exported as the
// README says; 127.0.0.1:50051 and :8080 in commands stand for the
// server's actual gRPC and HTTP addresses.
func TestDocs(t *testing.T) {
	for _, name := range userDocs {
		t.Run(name, func(t *testing.T) {
			md, err := os.ReadFile(filepath.Join("..", "..", "..", name))
			if err != nil {
				t.Fatal(err)
			}
			steps := docSteps(t, name, string(md))
			if len(steps) == 0 {
				return
			}
			runDocSteps(t, name, steps)
		})
	}
}

// docStep is one thing TestDocs runs: a command of a shell block, or the
// validation of a zed or YAML block.
type docStep struct {
	line int    // document line
	what string // the command, or "the zed block", for messages
	// script is the bash text of a command; a zed or YAML block has
	// none, but its text (src) and the file to save it as (file).
	script    string
	src, file string
	want      []string // expected output; nil: not compared
}

// docSteps reads the steps of the document md, failing on a malformed
// document and logging the blocks it skips.
func docSteps(t *testing.T, name, md string) []docStep {
	t.Helper()
	blocks, err := doctest.Parse(name, md)
	if err != nil {
		t.Fatal(err)
	}
	var steps []docStep
	for _, b := range blocks {
		runnable := b.Shell() || b.Lang == "zed" || b.Lang == "yaml" || b.Lang == "yml"
		if b.Skip != "" {
			if runnable {
				t.Logf("%s:%d: %s block skipped: %s", name, b.Line, b.Lang, b.Skip)
			}
			continue
		}
		switch {
		case b.Shell():
			cmds, err := doctest.Commands(b)
			if err != nil {
				t.Fatalf("%s:%d: %v", name, b.Line, err)
			}
			for _, c := range cmds {
				steps = append(steps, docStep{line: c.Line, what: strings.TrimSpace(c.Text), script: c.Text, want: c.Want})
			}
		case runnable:
			file := b.File
			if file == "" {
				file = fmt.Sprintf(".doc-block-%d.%s", b.Line, b.Lang)
			}
			if !filepath.IsLocal(file) {
				t.Fatalf("%s:%d: file=%s: want a name inside the working directory", name, b.Line, file)
			}
			steps = append(steps, docStep{line: b.Line, src: b.Text, file: file,
				what: fmt.Sprintf("pemba validate %s (the %s block; its line 1 is %s:%d)", file, b.Lang, name, b.TextLine)})
		}
	}
	return steps
}

// runDocSteps runs steps in one bash session against a fresh server and
// checks each one's exit code and output.
func runDocSteps(t *testing.T, name string, steps []docStep) {
	s := startServer(t, "--dev")
	out := t.TempDir() // the steps' sources, outputs and exit codes
	script, err := docScript(s, steps, out)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if combined, err := runSession(docEnv(t, s), s.dir, script); err != nil {
		t.Errorf("bash: %v\n%s", err, combined)
	}
	t.Logf("%d steps of %s ran in %v", len(steps), name, time.Since(start).Round(time.Millisecond))
	for i, st := range steps {
		if !checkDocStep(t, name, st, filepath.Join(out, strconv.Itoa(i))) {
			return
		}
	}
}

// docScript writes the bash session that runs steps against s: step i
// leaves its output and exit code in out/i.out, i.err and i.rc, and the
// session ends at the first step that fails.
func docScript(s *server, steps []docStep, out string) (string, error) {
	addrs := strings.NewReplacer(
		"127.0.0.1:50051", s.grpcAddr, "localhost:50051", s.grpcAddr,
		"127.0.0.1:8080", s.httpAddr, "localhost:8080", s.httpAddr,
	)
	var b strings.Builder
	b.WriteString("set -o pipefail\nexec </dev/null\n")
	for i, st := range steps {
		prefix := filepath.Join(out, strconv.Itoa(i))
		text := addrs.Replace(st.script)
		if st.src != "" {
			// The block is saved when the session reaches it: a command
			// before it may write the same file.
			if err := os.WriteFile(prefix+".src", []byte(st.src), 0o600); err != nil {
				return "", err
			}
			text = fmt.Sprintf("cp -- %s %s && pemba validate %[2]s\n", shellQuote(prefix+".src"), shellQuote(st.file))
		}
		// The group runs in the session's shell, so variables a command
		// sets stay set for the next ones. The .rc file holds the exit
		// code and when the step started and ended; the session's own
		// variables have names no document uses.
		fmt.Fprintf(&b, "__doctest_start=$EPOCHREALTIME\n{\n%s} >%s 2>%s\n"+
			"echo $? $__doctest_start $EPOCHREALTIME >%s; read -r __doctest_code _ <%[4]s; [ \"$__doctest_code\" = 0 ] || exit 0\n",
			text, shellQuote(prefix+".out"), shellQuote(prefix+".err"), shellQuote(prefix+".rc"))
	}
	return b.String(), nil
}

// docEnv is the session's environment: pemba first on PATH, and the
// server's endpoint and dev token exported as the README says, in place
// of any PEMBA_ variable of the test's own.
func docEnv(t *testing.T, s *server) []string {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(s.dir, "pemba-data", "dev-token"))
	if err != nil {
		t.Fatalf("dev token: %v", err)
	}
	bin := t.TempDir()
	if err := os.Symlink(pemba, filepath.Join(bin, "pemba")); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"PEMBA_ENDPOINT=" + s.grpcAddr, "PEMBA_TOKEN=" + strings.TrimSpace(string(token))}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEMBA_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// runSession runs script with bash in dir, in a process group of its own
// that ends with it, so a command left running in the background cannot
// outlive the test.
func runSession(env []string, dir, script string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	combined, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return combined, err
}

// checkDocStep checks the exit code and output a step left at prefix, and
// reports whether the steps after it ran.
func checkDocStep(t *testing.T, name string, st docStep, prefix string) bool {
	t.Helper()
	stdout, _ := os.ReadFile(prefix + ".out")
	stderr, _ := os.ReadFile(prefix + ".err")
	rc, err := os.ReadFile(prefix + ".rc")
	if err != nil {
		t.Errorf("%s:%d: %s did not finish\nstdout:\n%s\nstderr:\n%s", name, st.line, st.what, stdout, stderr)
		return false
	}
	code, took := stepResult(string(rc))
	if took > 2*time.Second {
		t.Logf("%s:%d: %s took %v", name, st.line, st.what, took.Round(time.Millisecond))
	}
	if code != "0" {
		t.Errorf("%s:%d: %s exited %s (the steps after it were not run)\nstdout:\n%s\nstderr:\n%s",
			name, st.line, st.what, code, stdout, stderr)
		return false
	}
	if st.want != nil && !doctest.Match(st.want, string(stdout)) {
		t.Errorf("%s:%d: the output of\n\t%s\ndiffers from the document's (times, zookies and durations masked; … elides):\n--- %s\n%s\n--- got\n%s\n--- stderr\n%s",
			name, st.line, strings.ReplaceAll(st.what, "\n", "\n\t"), name,
			doctest.Normalize(strings.Join(st.want, "\n")), doctest.Normalize(string(stdout)), stderr)
	}
	return true
}

// stepResult reads a step's .rc file: its exit code and how long it took.
func stepResult(rc string) (code string, took time.Duration) {
	f := strings.Fields(rc)
	if len(f) != 3 {
		return rc, 0
	}
	start, err1 := strconv.ParseFloat(f[1], 64)
	end, err2 := strconv.ParseFloat(f[2], 64)
	if err1 != nil || err2 != nil {
		return f[0], 0
	}
	return f[0], time.Duration((end - start) * float64(time.Second))
}

// shellQuote quotes s as one bash word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
