package dataset

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pembadb/pemba/graph"
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
	b, err := os.ReadFile(exampleDir + "validation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		SchemaFile    string              `yaml:"schemaFile"`
		Relationships string              `yaml:"relationships"`
		Assertions    map[string][]string `yaml:"assertions"`
		Validation    map[string][]string `yaml:"validation"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(exampleDir + file.SchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Compile(file.SchemaFile, string(src))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(file.Relationships, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := graph.ParseRelationship(line)
		if err != nil {
			t.Fatalf("relationship %q: %v", line, err)
		}
		if why := allowed(s, r); why != "" {
			t.Errorf("relationship %q: %s", line, why)
		}
		n++
	}
	if n < 30 {
		t.Errorf("only %d relationships", n)
	}
	asserted := 0
	for kind, list := range file.Assertions {
		for _, a := range list {
			rel, ctx, _ := strings.Cut(a, " with ")
			r, err := graph.ParseRelationship(rel)
			if err != nil {
				t.Fatalf("%s %q: %v", kind, a, err)
			}
			def := s.Definition(r.Resource.Type)
			if def == nil || (def.Permissions[r.Relation] == nil && def.Relations[r.Relation] == nil) {
				t.Errorf("%s %q: no %s#%s in the schema", kind, a, r.Resource.Type, r.Relation)
			}
			if (ctx != "") != strings.Contains(a, "{") {
				t.Errorf("%s %q: malformed context", kind, a)
			}
			asserted++
		}
	}
	if asserted < 20 || len(file.Assertions["assertCaveated"]) == 0 || len(file.Validation) == 0 {
		t.Errorf("too few assertions: %d (caveated %d), %d validations", asserted, len(file.Assertions["assertCaveated"]), len(file.Validation))
	}
}
