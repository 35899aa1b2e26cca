package sql

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/pgtest"
	"github.com/pembadb/pemba/storage"
)

func TestUnavailableClassification(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "25P03", Message: "terminating connection due to idle-in-transaction timeout"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{fmt.Errorf("query: %w", pgconn.ErrConnClosed), true},
		{context.DeadlineExceeded, false},
		{errors.New("syntax error"), false},
		{nil, false},
	} {
		got := errors.Is(unavailable(c.err), storage.ErrUnavailable)
		if got != c.want {
			t.Errorf("unavailable(%v) marks ErrUnavailable: %v, want %v", c.err, got, c.want)
		}
	}
}

// TestDatabaseOutageIsUnavailable stops a dedicated PostgreSQL under an
// open engine: every operation then fails with storage.ErrUnavailable.
func TestDatabaseOutageIsUnavailable(t *testing.T) {
	db, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNotInstalled) && !pgtest.RequiredByEnvironment() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Stop() })
	ctx := context.Background()
	e, err := Open(ctx, Config{URL: db.NewDatabase(t), AutoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	meta := storage.WriteMetadata{Actor: "t"}
	rev, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}\ndefinition doc {\n relation viewer: user\n}"}, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}

	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	_, headErr := e.HeadRevision(ctx)
	_, snapErr := e.SnapshotReader(ctx, rev)
	_, writeErr := e.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch,
		Relationship: graph.MustParseRelationship("doc:d#viewer@user:u")}}})
	_, schemaErr := r.ReadSchema(ctx)
	var queryErr, watchErr error
	for _, err := range r.QueryRelationships(ctx, storage.Filter{ResourceType: "doc"}, storage.QueryOptions{}) {
		queryErr = err
	}
	for _, err := range e.Watch(ctx, rev) {
		watchErr = err
		break
	}
	for op, err := range map[string]error{"HeadRevision": headErr, "SnapshotReader": snapErr, "Write": writeErr,
		"ReadSchema": schemaErr, "QueryRelationships": queryErr, "Watch": watchErr} {
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s with the database stopped: %v, want ErrUnavailable", op, err)
		}
	}
}
