package sql

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles holds one directory per dialect of NNNN_name.sql files.
// A migration, once released, is never edited: a change is a new file.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one versioned schema step.
type migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migrations returns the dialect's migrations in version order.
func migrations(d Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations for %s: %w", d, err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s/%s: name must be NNNN_name.sql", dir, e.Name())
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		ms = append(ms, migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations for %s: version %d found where %d was expected", d, m.Version, i+1)
		}
	}
	return ms, nil
}

// LatestSchemaVersion is the schema version this build of Pemba needs.
func LatestSchemaVersion(d Dialect) (int, error) {
	ms, err := migrations(d)
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

const (
	stmtMigrationApplied = "SELECT count(*) FROM schema_migrations WHERE version = $1"
	stmtRecordMigration  = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING"
	stmtSchemaVersion    = "SELECT coalesce(max(version), 0) FROM schema_migrations"
)

// migrationLockKey is the PostgreSQL advisory lock that keeps two
// `pemba migrate` runs from applying the same step at once.
const migrationLockKey = 0x70656d6261 // "pemba"

// pgMigrationLock takes migrationLockKey until the transaction ends
// (PostgreSQL only).
const pgMigrationLock = "SELECT pg_advisory_xact_lock($1)"

// MigrationStep reports one applied migration.
type MigrationStep struct {
	Version int
	Name    string
}

// Migrate brings the database at url up to the newest schema version and
// returns the steps it applied (none when it was current). It is safe to
// run again, and concurrently with another Migrate on PostgreSQL.
func Migrate(ctx context.Context, d Dialect, url string) ([]MigrationStep, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("migrate: connect: %w", err)
	}
	defer pool.Close()
	return migrate(ctx, d, pool)
}

func migrate(ctx context.Context, d Dialect, pool *pgxpool.Pool) ([]MigrationStep, error) {
	ms, err := migrations(d)
	if err != nil {
		return nil, err
	}
	if d == CockroachDB {
		if _, err := pool.Exec(ctx, createMigrationsTable); err != nil {
			return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
		}
	}
	var applied []MigrationStep
	for _, m := range ms {
		var ran bool
		if d == CockroachDB {
			ran, err = applyCockroachDB(ctx, pool, m)
		} else {
			ran, err = applyPostgreSQL(ctx, pool, m)
		}
		if err != nil {
			return applied, fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
		}
		if ran {
			applied = append(applied, MigrationStep{m.Version, m.Name})
		}
	}
	return applied, nil
}

// applyPostgreSQL runs one migration and records it in a single
// transaction (PostgreSQL DDL is transactional), under an advisory lock.
func applyPostgreSQL(ctx context.Context, pool *pgxpool.Pool, m migration) (ran bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, pgMigrationLock, int64(migrationLockKey)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
			return err
		}
		done, err := isApplied(ctx, tx, m.Version)
		if err != nil || done {
			return err
		}
		// No arguments: pgx sends the file with the simple protocol, which
		// runs several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		ran = true
		return recordApplied(ctx, tx, m)
	})
	return ran, err
}

// applyCockroachDB runs one migration statement by statement, each in its
// own implicit transaction (CockroachDB advises against schema changes
// inside explicit transactions), then records it. Every statement is
// idempotent (IF NOT EXISTS, ON CONFLICT DO NOTHING), so an interrupted
// migration is completed by running it again.
func applyCockroachDB(ctx context.Context, pool *pgxpool.Pool, m migration) (bool, error) {
	done, err := isApplied(ctx, pool, m.Version)
	if err != nil || done {
		return false, err
	}
	for _, stmt := range splitStatements(m.SQL) {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("%s: %w", firstLine(stmt), err)
		}
	}
	return true, recordApplied(ctx, pool, m)
}

type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func isApplied(ctx context.Context, q querier, version int) (bool, error) {
	var n int
	err := q.QueryRow(ctx, stmtMigrationApplied, version).Scan(&n)
	return n > 0, err
}

func recordApplied(ctx context.Context, q querier, m migration) error {
	_, err := q.Exec(ctx, stmtRecordMigration, m.Version, m.Name)
	return err
}

// splitStatements splits a migration file at the semicolons that end its
// statements, dropping comment-only lines. Migration files keep semicolons
// out of comments and string literals, which makes this split exact.
func splitStatements(script string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(stripComment(line)), ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

func stripComment(line string) string {
	if i := strings.Index(line, "--"); i >= 0 {
		return line[:i]
	}
	return line
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ErrNotMigrated is wrapped by Open's error when the database schema is
// missing or older than this build needs.
var ErrNotMigrated = errors.New("database schema is not migrated")

// checkSchemaVersion returns an error unless the database's schema version
// is exactly the one this build needs.
func checkSchemaVersion(ctx context.Context, d Dialect, pool *pgxpool.Pool) error {
	want, err := LatestSchemaVersion(d)
	if err != nil {
		return err
	}
	var have int
	err = pool.QueryRow(ctx, stmtSchemaVersion).Scan(&have)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		have, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case have < want:
		return fmt.Errorf("%w: the database is at schema version %d and this pemba needs %d; run `pemba migrate --datastore %s --datastore-url URL`",
			ErrNotMigrated, have, want, d)
	case have > want:
		return fmt.Errorf("the database is at schema version %d, newer than this pemba knows (%d): upgrade pemba", have, want)
	}
	return nil
}
