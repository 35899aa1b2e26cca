package sql

import (
	"context"
	"fmt"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	crdbpgx "github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Dialect selects the SQL database the engine talks to.
type Dialect string

const (
	PostgreSQL  Dialect = "postgres"
	CockroachDB Dialect = "cockroachdb"
)

// ParseDialect accepts the --datastore names of the SQL engines.
func ParseDialect(s string) (Dialect, error) {
	switch Dialect(s) {
	case PostgreSQL, CockroachDB:
		return Dialect(s), nil
	case "postgresql":
		return PostgreSQL, nil
	case "cockroach", "crdb":
		return CockroachDB, nil
	}
	return "", fmt.Errorf("unknown SQL datastore %q (want postgres or cockroachdb)", s)
}

// runWrite runs fn in a read-write transaction, retrying it from the start
// on serialization failures (SQLSTATE 40001). fn may run several times and
// must keep no state between attempts.
//
// The two dialects need different retry loops. CockroachDB's client-side
// protocol (crdbpgxv5.ExecuteTx) restarts inside one transaction through
// the cockroach_restart savepoint, which only CockroachDB understands: on
// PostgreSQL a 40001 leaves the transaction aborted, so that loop cannot
// succeed, and it discards the COMMIT error, which would silently lose a
// write. On PostgreSQL every attempt is therefore a fresh transaction whose
// COMMIT error is returned, and crdb.ExecuteCtx decides whether to retry.
//
// PostgreSQL runs at READ COMMITTED: every write takes the revision
// counter's row lock before reading anything, so writers run one at a
// time and each statement after the lock sees every earlier revision —
// serial execution, without the 40001 aborts SERIALIZABLE would raise on
// the contended counter row. CockroachDB runs SERIALIZABLE, its only
// isolation level for this protocol.
func runWrite(ctx context.Context, d Dialect, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	if d == CockroachDB {
		return unavailable(crdbpgx.ExecuteTx(ctx, pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn))
	}
	return unavailable(crdb.ExecuteCtx(ctx, func(ctx context.Context, _ ...any) error {
		return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
	}))
}
