// Command pemba is the Pemba server and client: `pemba serve` runs the
// authorization database; the other commands validate schemas locally or
// talk to a running server.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitFailure = 1 // a check said no, or validation found errors
	exitError   = 2 // the command could not do its job
)

// exitCodeError carries a specific exit code out of a command.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }

// rootCmd is the top-level command; each subcommand file registers itself
// in init.
var rootCmd = &cobra.Command{
	Use:           "pemba",
	Short:         "Pemba: a relationship-graph authorization database",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	explainArgErrors(rootCmd)
	rootCmd.SetArgs(args)
	err := rootCmd.Execute()
	if err == nil {
		return exitOK
	}
	var coded *exitCodeError
	if errors.As(err, &coded) {
		if coded.err != nil && coded.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "pemba:", coded.err)
		}
		return coded.code
	}
	fmt.Fprintln(os.Stderr, "pemba:", err)
	return exitError
}

// explainArgErrors makes every command's argument check say what the
// arguments are: `usage: pemba check RESOURCE PERMISSION SUBJECT (got 2
// arguments)` rather than cobra's bare count. It wraps each command once.
func explainArgErrors(cmd *cobra.Command) {
	if check := cmd.Args; check != nil && !wrappedArgs[cmd] {
		wrappedArgs[cmd] = true
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				use := strings.TrimSuffix(c.UseLine(), " [flags]")
				return usageError("usage: %s (%v)", use, err)
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		explainArgErrors(sub)
	}
}

var wrappedArgs = map[*cobra.Command]bool{}
