package main

import (
	"fmt"

	"github.com/spf13/cobra"

	sqlstore "github.com/pembadb/pemba/storage/sql"
)

func init() {
	var datastore, url string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the tables of a PostgreSQL or CockroachDB datastore",
		Long: `migrate applies the schema migrations this pemba needs to a PostgreSQL or
CockroachDB database, recording each in its schema_migrations table. It is
safe to run again: applied steps are skipped. pemba serve refuses a
database that is not migrated to its version.`,
		Example: "  pemba migrate --datastore postgres --datastore-url postgres://pemba@localhost:5432/pemba",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dialect, err := sqlstore.ParseDialect(datastore)
			if err != nil {
				return &exitCodeError{code: exitError, err: fmt.Errorf("--datastore: %w", err)}
			}
			if url == "" {
				return &exitCodeError{code: exitError, err: fmt.Errorf("--datastore-url is required")}
			}
			steps, err := sqlstore.Migrate(cmd.Context(), dialect, url)
			out := cmd.OutOrStdout()
			for _, s := range steps {
				fmt.Fprintf(out, "applied %04d_%s\n", s.Version, s.Name)
			}
			if err != nil {
				return err
			}
			latest, err := sqlstore.LatestSchemaVersion(dialect)
			if err != nil {
				return err
			}
			if len(steps) == 0 {
				fmt.Fprintf(out, "%s datastore is up to date at schema version %d\n", dialect, latest)
			} else {
				fmt.Fprintf(out, "%s datastore migrated to schema version %d\n", dialect, latest)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&datastore, "datastore", "postgres", "datastore kind: postgres or cockroachdb")
	cmd.Flags().StringVar(&url, "datastore-url", "", "connection URL of the database, e.g. postgres://user@host:5432/db")
	rootCmd.AddCommand(cmd)
}
