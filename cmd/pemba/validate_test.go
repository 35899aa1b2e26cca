package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPemba builds the real binary once per test run.
func buildPemba(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pemba")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runPemba runs the binary and returns its stdout, stderr and exit code.
func runPemba(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run pemba %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestValidateAndFormatCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildPemba(t)

	validate := []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings expected in stdout
	}{
		{"valid schema", []string{"testdata/valid.zed"}, 0,
			[]string{"testdata/valid.zed: valid (3 definitions, 1 caveat)"}},
		{"every error reported with a caret", []string{"testdata/invalid.zed"}, 1, []string{
			"testdata/invalid.zed:4:18: unknown type \"usr\" in relation \"owner\" on definition \"document\" (did you mean \"user\"?)\n\t\trelation owner: usr\n\t\t                ^",
			"testdata/invalid.zed:6:20: relation or permission \"viewr\" not found on definition \"document\" (did you mean \"viewer\"?)",
			"testdata/invalid.zed: 2 error(s)",
		}},
		{"warnings do not fail", []string{"testdata/warning.pemba"}, 0, []string{
			"testdata/warning.pemba:7:28: warning: arrow parent->viewr",
			"testdata/warning.pemba: valid",
		}},
		{"several files, one invalid", []string{"testdata/valid.zed", "testdata/invalid.zed"}, 1, []string{
			"testdata/valid.zed: valid", "testdata/invalid.zed: 2 error(s)",
		}},
		{"unreadable file", []string{"testdata/valid.zed", "testdata/missing.zed"}, 2, []string{
			"testdata/missing.zed: cannot read: no such file or directory",
		}},
		{"validation file passes", []string{"testdata/validation.yaml"}, 0, []string{
			"testdata/validation.yaml: valid (1 document(s), 1 relationships, 2 assertions, 1 validations)",
		}},
		{"validation file fails", []string{"testdata/validation_fails.yaml"}, 1, []string{
			"testdata/validation_fails.yaml:11: assertTrue document:1#view@user:jerry failed: NO_PERMISSION",
		}},
		{"malformed validation file", []string{"testdata/validation_malformed.yaml"}, 2, []string{
			"testdata/validation_malformed.yaml: invalid YAML",
		}},
	}
	for _, tc := range validate {
		t.Run("validate/"+tc.name, func(t *testing.T) {
			stdout, stderr, code := runPemba(t, bin, append([]string{"validate"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
		})
	}

	t.Run("format prints the canonical form", func(t *testing.T) {
		stdout, stderr, code := runPemba(t, bin, "schema", "format", "testdata/messy.zed")
		want, _ := os.ReadFile("testdata/messy.formatted.zed")
		if code != 0 || stdout != string(want) {
			t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, stderr, stdout, want)
		}
	})
	t.Run("format --write rewrites in place", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "schema.zed")
		src, _ := os.ReadFile("testdata/messy.zed")
		if err := os.WriteFile(path, src, 0o640); err != nil {
			t.Fatal(err)
		}
		if stdout, stderr, code := runPemba(t, bin, "schema", "format", "--write", path); code != 0 || stdout != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		got, _ := os.ReadFile(path)
		want, _ := os.ReadFile("testdata/messy.formatted.zed")
		if string(got) != string(want) {
			t.Errorf("rewritten file:\n%s\nwant:\n%s", got, want)
		}
		if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", info.Mode().Perm())
		}
	})
	t.Run("format refuses files with syntax errors", func(t *testing.T) {
		stdout, stderr, code := runPemba(t, bin, "schema", "format", "testdata/syntax_error.zed")
		if code != 1 || stdout != "" || !strings.Contains(stderr, "testdata/syntax_error.zed:2:17: expected ':'") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("format of a missing file", func(t *testing.T) {
		_, stderr, code := runPemba(t, bin, "schema", "format", "testdata/missing.zed")
		if code != 2 || !strings.Contains(stderr, "no such file") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}
