package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pembadb/pemba/schema"
	"github.com/spf13/cobra"
)

// fileValidator checks one file already read into data, writing its
// findings to out. It returns whether the file is valid; an error means
// the file could not be checked at all.
type fileValidator func(out io.Writer, path string, data []byte) (valid bool, err error)

// validators picks a validator by file extension; files with any other
// extension are schema files.
var validators = map[string]fileValidator{
	".yaml": validateYAML,
	".yml":  validateYAML,
}

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "validate FILE...",
		Short: "Check schema files (.zed, .pemba, ...) and report every error",
		Long: "validate compiles each schema file and prints every error as\n" +
			"FILE:line:col: message with the source line. It exits 0 when all files\n" +
			"are valid, 1 when any has errors and 2 when a file cannot be read.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd.OutOrStdout(), args)
		},
	})
}

func runValidate(out io.Writer, paths []string) error {
	code := exitOK
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(out, "%s: cannot read: %v\n", path, unwrapPathError(err))
			code = exitError
			continue
		}
		validate, ok := validators[strings.ToLower(filepath.Ext(path))]
		if !ok {
			validate = validateSchemaFile
		}
		valid, err := validate(out, path, data)
		switch {
		case err != nil:
			fmt.Fprintf(out, "%s: %v\n", path, err)
			code = exitError
		case !valid:
			if code == exitOK {
				code = exitFailure
			}
		}
	}
	if code == exitOK {
		return nil
	}
	// Findings are already printed; the exit code says the rest.
	return &exitCodeError{code: code, err: errors.New("")}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// validateSchemaFile compiles a schema file and prints its errors and
// warnings.
func validateSchemaFile(out io.Writer, path string, data []byte) (bool, error) {
	s, err := schema.Compile(path, string(data))
	if err != nil {
		var list *schema.ErrorList
		if !errors.As(err, &list) {
			return false, err
		}
		fmt.Fprintln(out, list.Error())
		fmt.Fprintf(out, "%s: %d error(s)\n", path, len(*list))
		return false, nil
	}
	for _, w := range s.Warnings() {
		fmt.Fprintf(out, "%s:%d:%d: warning: %s\n", w.File, w.Pos.Line, w.Pos.Column, strings.TrimPrefix(w.Error(), fmt.Sprintf("%s:%d:%d: ", w.File, w.Pos.Line, w.Pos.Column)))
		if snippet := w.Snippet(); snippet != "" {
			fmt.Fprintln(out, snippet)
		}
	}
	fmt.Fprintf(out, "%s: valid (%s, %s)\n", path, counted(len(s.DefinitionOrder), "definition"), counted(len(s.CaveatOrder), "caveat"))
	return true, nil
}

// counted is n and noun, plural unless n is 1: "1 caveat", "3 definitions".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
