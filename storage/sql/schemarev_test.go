package sql

import (
	"context"
	"errors"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// TestMigrateToSchemaRevision upgrades a database at version 2 that holds
// schema versions: the counter's row learns the newest one, so writes
// guarded by it commit and writes guarded by an older one do not.
func TestMigrateToSchemaRevision(t *testing.T) {
	ctx := context.Background()
	url, pool := databaseBefore(t, 3, "schema_revision")
	// What a version-2 server left behind: schema versions at revisions 1
	// and 2.
	for _, stmt := range []string{
		"UPDATE revision_counter SET head = 2 WHERE id = 1",
		"INSERT INTO revisions (revision, committed_at, actor, reason, schema_changed) VALUES (1, now(), '', '', true), (2, now(), '', '', true)",
		"INSERT INTO schemas (revision, source, compiled) VALUES (1, 'definition user {}', ''), (2, 'definition user {}', '')",
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	e := openMigrated(t, url)
	write := func(guard storage.Revision) error {
		_, err := e.Write(ctx, storage.WriteRequest{SchemaRevision: guard, Mutations: []storage.Mutation{
			{Op: storage.OpTouch, Relationship: graph.MustParseRelationship("doc:a#viewer@user:u")}}})
		return err
	}
	if err := write(1); !errors.Is(err, storage.ErrSchemaChanged) {
		t.Fatalf("write guarded by the older schema: %v, want ErrSchemaChanged", err)
	}
	if err := write(2); err != nil {
		t.Fatalf("write guarded by the newest schema: %v", err)
	}
}
