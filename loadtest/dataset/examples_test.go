package dataset

import (
	"os"
	"testing"

	"github.com/pembadb/pemba/check/validationfile"
	"github.com/pembadb/pemba/schema"
)

const exampleDir = "../../examples/identity-platform/"

// TestExampleSchemaIsTheDatasetSchema keeps the shipped example and the
// generator's schema identical, so the example documents what is loaded.
func TestExampleSchemaIsTheDatasetSchema(t *testing.T) {
	b, err := os.ReadFile(exampleDir + "schema.zed")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != identityPlatformSchema {
		t.Fatal("examples/identity-platform/schema.zed differs from loadtest/dataset/identity_platform.zed; copy one onto the other")
	}
}

// TestExampleValidationFileIsWellFormed checks the example validation file
// against the schema: every relationship parses and is allowed, and every
// assertion names an existing permission or relation. Whether the
// assertions hold is `pemba validate`'s job.
func TestExampleValidationFileIsWellFormed(t *testing.T) {
	path := exampleDir + "validation.yaml"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := validationfile.Parse(path, b, os.ReadFile)
	if err != nil || len(docs) != 1 {
		t.Fatalf("parse %s: %d documents, %v", path, len(docs), err)
	}
	file := docs[0]
	s, err := schema.Compile(file.SchemaPath, file.Schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range file.Relationships {
		if why := allowed(s, l.Value); why != "" {
			t.Errorf("relationship %s (line %d): %s", l.Value, l.Line, why)
		}
	}
	if n := len(file.Relationships); n < 30 {
		t.Errorf("only %d relationships", n)
	}
	caveated := 0
	for _, a := range file.Assertions {
		def := s.Definition(a.Resource.Type)
		if def == nil || !def.Has(a.Permission) {
			t.Errorf("%s %q: no %s#%s in the schema", a.Kind, a.Text, a.Resource.Type, a.Permission)
		}
		if a.Kind == validationfile.AssertCaveated {
			caveated++
		}
	}
	if len(file.Assertions) < 20 || caveated == 0 || len(file.Expectations) == 0 {
		t.Errorf("too few assertions: %d (caveated %d), %d validations", len(file.Assertions), caveated, len(file.Expectations))
	}
}
