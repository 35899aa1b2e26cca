package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pembadb/pemba/schema"
	"github.com/spf13/cobra"
)

// schemaCmd groups the commands that work on schema files; other files
// add subcommands to it in their init.
var schemaCmd = &cobra.Command{
	Use:   "schema",
	Short: "Format schema files, and read, write or diff a server's schema",
}

func init() {
	var write bool
	format := &cobra.Command{
		Use:   "format FILE",
		Short: "Print a schema file in canonical form",
		Long: "format prints FILE in canonical form: consistent spacing and\n" +
			"indentation, minimal parentheses, comments kept. With --write it\n" +
			"rewrites FILE in place instead. Files with syntax errors are left alone.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			data, err := os.ReadFile(path)
			if err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("schema format: %w", err)}
			}
			formatted, err := schema.FormatSource(path, string(data))
			if err != nil {
				var list *schema.ErrorList
				if errors.As(err, &list) {
					fmt.Fprintln(cmd.ErrOrStderr(), list.Error())
					return &exitCodeError{code: exitFailure, err: fmt.Errorf("schema format: %s has %d syntax error(s); not formatted", path, len(*list))}
				}
				return &exitCodeError{code: exitError, err: fmt.Errorf("schema format: %w", err)}
			}
			if !write {
				_, err := fmt.Fprint(cmd.OutOrStdout(), formatted)
				return err
			}
			if formatted == string(data) {
				return nil
			}
			info, err := os.Stat(path)
			if err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("schema format: %w", err)}
			}
			if err := writeFileAtomic(path, []byte(formatted), info.Mode().Perm()); err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("schema format: %w", err)}
			}
			return nil
		},
	}
	format.Flags().BoolVarP(&write, "write", "w", false, "rewrite FILE in place instead of printing")
	schemaCmd.AddCommand(format)
	rootCmd.AddCommand(schemaCmd)
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, so a failed write never leaves a half-written schema.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pemba-format-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
