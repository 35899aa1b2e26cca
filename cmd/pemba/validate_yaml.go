package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pembadb/pemba/check/validationfile"
	"github.com/pembadb/pemba/schema"
)

// validateYAML runs a zed-style validation file: every YAML document in it
// is loaded into its own in-memory datastore and its assertions and
// expected subjects are checked. It prints each failure with its line and
// explanation. A malformed file is an error (exit 2); schema errors and
// failed checks make the file invalid (exit 1).
func validateYAML(out io.Writer, path string, data []byte) (bool, error) {
	docs, err := validationfile.Parse(path, data, os.ReadFile)
	if err != nil {
		var fe *validationfile.FileError
		if errors.As(err, &fe) {
			return false, errors.New(fe.Msg + lineSuffix(fe.Line))
		}
		return false, err
	}
	valid := true
	var rels, asserts, expects int
	for _, doc := range docs {
		rep, err := validationfile.Run(context.Background(), doc)
		if err != nil {
			var list *schema.ErrorList
			if !errors.As(err, &list) {
				return false, err
			}
			fmt.Fprintln(out, list.Error())
			valid = false
			continue
		}
		for _, f := range rep.Failures {
			fmt.Fprintln(out, f.String())
		}
		valid = valid && rep.Passed()
		rels, asserts, expects = rels+rep.Relationships, asserts+rep.Assertions, expects+rep.Expectations
	}
	if valid {
		fmt.Fprintf(out, "%s: valid (%d document(s), %d relationships, %d assertions, %d validations)\n",
			path, len(docs), rels, asserts, expects)
	}
	return valid, nil
}

func lineSuffix(line int) string {
	if line <= 0 {
		return ""
	}
	return fmt.Sprintf(" (line %d)", line)
}
