package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pembadb/pemba/internal/pgtest"
)

func TestMigrateCommand(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil && !errors.Is(err, pgtest.ErrNotInstalled) {
		t.Fatal(err)
	}
	defer srv.Stop()
	url := srv.NewDatabase(t) // skips without PostgreSQL, fails under CI=true

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		// Flags keep their values between runs of rootCmd: the case
		// without --datastore-url goes first.
		{[]string{"migrate", "--datastore", "postgres"}, exitError, ""},
		{[]string{"migrate", "--datastore", "postgres", "--datastore-url", url}, exitOK, "applied 0001_initial\napplied 0002_instance_id\napplied 0003_schema_revision\napplied 0004_audit_log\napplied 0005_audit_index\napplied 0006_audit_postings\napplied 0007_audit_head\napplied 0008_revision_records\npostgres datastore migrated to schema version 8\n"},
		{[]string{"migrate", "--datastore", "postgres", "--datastore-url", url}, exitOK, "postgres datastore is up to date at schema version 8\n"},
		{[]string{"migrate", "--datastore", "mysql", "--datastore-url", url}, exitError, ""},
	} {
		var out bytes.Buffer
		rootCmd.SetOut(&out)
		code := run(c.args)
		rootCmd.SetOut(nil)
		if code != c.code || out.String() != c.want {
			t.Errorf("pemba %s: exit %d, output %q; want exit %d, output %q",
				strings.Join(c.args[:3], " "), code, out.String(), c.code, c.want)
		}
	}
}
