// Package validationfile reads and runs zed-style validation files: YAML
// documents holding a schema (inline `schema` or `schemaFile`), a
// `relationships` block (one relationship string per line), `assertions`
// (assertTrue / assertFalse / assertCaveated) and a `validation` block (the
// exact expected subjects of resource#permission pairs, with provenance).
//
// Parse reads a file into Documents; Run evaluates one Document entirely in
// process on an in-memory datastore and reports every failure with the file
// line it comes from and an explanation (access path or Expand tree).
// Several YAML documents separated by `---` are independent worlds.
package validationfile
