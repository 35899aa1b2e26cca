package validationfile

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pembadb/pemba/schema"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the .golden files with the current output")

// TestGolden runs every testdata/*.yaml file and compares what it reports
// (file errors, schema errors, failures, or a pass) with testdata/*.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			got := runFile(t, path)
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
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

func runFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	docs, err := Parse(path, data, os.ReadFile)
	if err != nil {
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("Parse returned %T, want *FileError: %v", err, err)
		}
		return "file error: " + err.Error() + "\n"
	}
	for i, doc := range docs {
		fmt.Fprintf(&b, "document %d:\n", i+1)
		rep, err := Run(context.Background(), doc)
		if err != nil {
			var list *schema.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Run returned %T, want *schema.ErrorList: %v", err, err)
			}
			b.WriteString(list.Error() + "\n")
			continue
		}
		if rep.Passed() {
			fmt.Fprintf(&b, "passed: %d relationships, %d assertions, %d validations\n", rep.Relationships, rep.Assertions, rep.Expectations)
		}
		for _, f := range rep.Failures {
			b.WriteString(f.String() + "\n")
		}
	}
	return b.String()
}
