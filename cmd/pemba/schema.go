package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// The server-side schema commands; schemaCmd itself (shared with the
// local `schema format`) is declared in schema_format.go.

func init() {
	var reason string
	var labelFlags []string
	write := &cobra.Command{
		Use:   "write FILE",
		Short: "Store a new schema on the server",
		Long: `write compiles FILE on the server and stores it. A schema that would leave
stored relationships without a relation (or subject type) to live in is
refused, naming the relation and how many relationships it still has.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := os.ReadFile(args[0])
			if err != nil {
				return usageError("schema write: %v", err)
			}
			labels, err := parseLabels(labelFlags)
			if err != nil {
				return usageError("schema write: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				resp, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: string(text), Reason: reason, Labels: labels})
				if err != nil {
					return rpcError("schema write", err)
				}
				if client.json {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				for _, w := range resp.GetWarnings() {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "schema written")
				printZookie(cmd, "written at", resp.GetWrittenAt())
				return nil
			})
		},
	}
	write.Flags().StringVar(&reason, "reason", "", "reason recorded with the write in the audit log (shown by watch and audit)")
	addLabelFlag(write, &labelFlags)

	read := &cobra.Command{
		Use:   "read",
		Short: "Print the schema stored on the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				resp, err := c.schema.ReadSchema(ctx, &pb.ReadSchemaRequest{Consistency: c.consistency})
				if err != nil {
					return rpcError("schema read", err)
				}
				if client.json {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				text := resp.GetSchema()
				if len(text) > 0 && text[len(text)-1] != '\n' {
					text += "\n"
				}
				fmt.Fprint(cmd.OutOrStdout(), text)
				printZookie(cmd, "read at", resp.GetReadAt())
				return nil
			})
		},
	}
	addConsistencyFlag(read)

	diff := &cobra.Command{
		Use:   "diff FILE",
		Short: "Show what writing FILE would change, without writing it",
		Long: `diff compares FILE with the stored schema and lists the definitions,
relations, permissions and caveats it adds, removes or changes. Lines
starting with ! are reasons "schema write" would be refused. It exits 0
when the write would be accepted and 1 when it would be refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := os.ReadFile(args[0])
			if err != nil {
				return usageError("schema diff: %v", err)
			}
			return withConn(cmd, func(ctx context.Context, c *conn) error {
				resp, err := c.schema.DiffSchema(ctx, &pb.DiffSchemaRequest{Schema: string(text), Consistency: c.consistency})
				if err != nil {
					return rpcError("schema diff", err)
				}
				if client.json {
					if err := printJSON(cmd.OutOrStdout(), resp); err != nil {
						return err
					}
				} else {
					out := cmd.OutOrStdout()
					if len(resp.GetChanges()) == 0 {
						fmt.Fprintln(out, "no changes")
					}
					for _, ch := range resp.GetChanges() {
						fmt.Fprintf(out, "%s %s\n", diffMark(ch.GetKind()), ch.GetDescription())
					}
					for _, w := range resp.GetWarnings() {
						fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
					}
					for _, b := range resp.GetBlockers() {
						fmt.Fprintln(out, "!", b)
					}
					printZookie(cmd, "compared at", resp.GetReadAt())
				}
				if len(resp.GetBlockers()) > 0 {
					return &exitCodeError{code: exitFailure, err: fmt.Errorf("schema write would be refused")}
				}
				return nil
			})
		},
	}
	addConsistencyFlag(diff)

	schemaCmd.AddCommand(write, read, diff)
	addClientFlags(write)
	addClientFlags(read)
	addClientFlags(diff)
}

func diffMark(kind string) string {
	switch {
	case len(kind) >= 5 && kind[len(kind)-5:] == "added":
		return "+"
	case len(kind) >= 7 && kind[len(kind)-7:] == "removed":
		return "-"
	}
	return "~"
}
