package validationfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pembadb/pemba/graph"
)

// FuzzParse checks that reading a validation file never panics, that every
// error is a *FileError naming the file and a line inside it, and that a
// file that parses yields documents with a schema.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("schema: |-\n  definition user {}\nassertions:\n  assertTrue:\n    - 'user:a#b@user:c with {\"k\": [1, {\"x\": null}]}'\n"))
	f.Add([]byte("schemaFile: s.zed\nvalidation:\n  document:1#view:\n    - '[user:* - {user:a, user:b}] is <document:1#viewer>/<group:g#member>'\n"))
	f.Add([]byte("---\n---\nschema: &s x\nrelationships: *s\n"))
	read := func(path string) ([]byte, error) {
		if filepath.Base(path) == "s.zed" {
			return []byte("definition user {}"), nil
		}
		return nil, os.ErrNotExist
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Parse("fuzz.yaml", data, read)
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != "fuzz.yaml" {
				t.Fatalf("error %T is not a *FileError for the file: %v", err, err)
			}
			// YAML also breaks lines at '\r', so only the byte count bounds
			// the line count.
			if fe.Line < 0 || fe.Line > len(data)+1 {
				t.Fatalf("error line %d outside the file: %v", fe.Line, err)
			}
			return
		}
		if len(docs) == 0 {
			t.Fatal("no documents and no error")
		}
		for _, d := range docs {
			if d.SchemaPath == "" {
				t.Fatalf("document without a schema path: %+v", d)
			}
			for _, a := range d.Assertions {
				for k, v := range a.Context {
					if graph.ValidateContextDepth(k, v) != nil {
						t.Fatalf("assertion context past the depth limit: %q", a.Text)
					}
				}
			}
		}
	})
}
