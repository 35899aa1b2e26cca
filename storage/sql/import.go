package sql

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// DefaultImportBatchSize is the batch size Import uses when given 0.
const DefaultImportBatchSize = 1000

// Import writes rels with TOUCH semantics, batchSize relationships per
// revision. A batch is validated before it is written; a bad relationship
// or a failing source stops the import after the batches already
// committed, which the result reports.
func (e *Engine) Import(ctx context.Context, rels iter.Seq2[graph.Relationship, error], opts storage.ImportOptions) (storage.ImportResult, error) {
	var res storage.ImportResult
	batchSize := opts.BatchSize
	if err := e.checkOpen(); err != nil {
		return res, err
	}
	if batchSize < 0 {
		return res, fmt.Errorf("import: %w: batch size: %d is negative", storage.ErrInvalidArgument, batchSize)
	}
	if batchSize == 0 {
		batchSize = DefaultImportBatchSize
	}
	batch := newImportBatch(batchSize, e.audit)
	flush := func() error {
		if batch.len() == 0 {
			return nil
		}
		rev, err := e.importBatch(ctx, batch, opts)
		if err != nil {
			return fmt.Errorf("import batch at relationship %d: %w", res.Imported, err)
		}
		res.Imported += batch.len()
		res.Revisions = append(res.Revisions, rev)
		batch.reset()
		return nil
	}
	for rel, err := range rels {
		if err != nil {
			return res, fmt.Errorf("import: read relationship %d: %w", res.Imported+batch.len(), err)
		}
		if err := batch.add(rel); err != nil {
			return res, fmt.Errorf("import: relationship %d: %w", res.Imported+batch.len(), err)
		}
		if batch.len() == batchSize {
			if err := flush(); err != nil {
				return res, fmt.Errorf("import: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return res, fmt.Errorf("import: %w", err)
	}
	return res, nil
}

// The rows the planner believes the relationships table holds (-1
// before its first ANALYZE), and the refresh after a bulk load.
const (
	pgRelationshipsPlanned   = "SELECT reltuples FROM pg_class WHERE oid = 'relationships'::regclass"
	pgVacuumAnalyzeRelations = "VACUUM (ANALYZE) relationships"
)

// refreshMinRows is the bulk load size from which AfterImport refreshes
// the table.
const refreshMinRows = 10000

// AfterImport refreshes what a bulk load of imported relationships (one
// import stream, whatever its batches) leaves stale in PostgreSQL, when
// it is at least refreshMinRows and a fifth of the rows the planner
// believes the table holds: it runs VACUUM (ANALYZE) on the
// relationships table before it returns. Autovacuum would, but only
// after its next nap (a minute by default), and meanwhile the planner
// plans for the table it last measured — right after loading a million
// relationships into an empty table, a reverse query of 100 users' teams
// scanned the subject type's whole index range, 150–200 ms instead of
// 2–3 — and the index-only scans visit the heap for every row, the
// visibility map being unset; autovacuum's own pass then lands on the
// first workload. On the identity-platform graph it takes 0.6 s for
// 1,040,613 relationships. Best effort: the import has committed, and a
// failed refresh (a role that does not own the table only gets a
// warning) leaves the table to autovacuum, as does an import that ends
// while another's refresh runs (one at a time per engine). CockroachDB
// refreshes its statistics itself.
func (e *Engine) AfterImport(ctx context.Context, imported int) {
	if e.dialect != PostgreSQL || imported < refreshMinRows || e.checkOpen() != nil {
		return
	}
	if !e.refreshing.CompareAndSwap(false, true) {
		return
	}
	defer e.refreshing.Store(false)
	var planned float64
	if err := e.pool.QueryRow(ctx, pgRelationshipsPlanned).Scan(&planned); err != nil || float64(imported)*5 < planned {
		return
	}
	_, _ = e.pool.Exec(ctx, pgVacuumAnalyzeRelations)
}

// importBatch holds one batch's rows, encoded and deduplicated: a
// relationship given twice keeps its last payload (TOUCH semantics), at
// the position it first appeared.
type importBatch struct {
	rows [][]any
	// changes holds the TOUCH of each row, for the audit entry; nil when
	// the audit log is off.
	changes []storage.AuditChange
	index   map[graph.Key]int // identity → position in rows
	count   int               // relationships given, duplicates included
}

func newImportBatch(size int, audit bool) *importBatch {
	size = min(size, 1<<16)
	b := &importBatch{rows: make([][]any, 0, size), index: make(map[graph.Key]int)}
	if audit {
		b.changes = make([]storage.AuditChange, 0, size)
	}
	return b
}

func (b *importBatch) add(rel graph.Relationship) error {
	if err := storage.ValidateRelationship(rel); err != nil {
		return err
	}
	args, err := relArgs(rel)
	if err != nil {
		return err
	}
	b.count++
	k := rel.Key()
	change := storage.AuditChange{Op: storage.OpTouch, Relationship: rel}
	if i, dup := b.index[k]; dup {
		b.rows[i] = args
		if b.changes != nil {
			b.changes[i] = change
		}
		return nil
	}
	b.index[k] = len(b.rows)
	b.rows = append(b.rows, args)
	if b.changes != nil {
		b.changes = append(b.changes, change)
	}
	return nil
}

func (b *importBatch) len() int { return b.count }

func (b *importBatch) reset() {
	b.rows = b.rows[:0]
	clear(b.changes) // drop the references to the batch's strings
	b.changes = b.changes[:0]
	clear(b.index)
	b.count = 0
}

// importBatch writes one batch in its own revision.
//
// On PostgreSQL a batch that replaces no live relationship — the usual
// bulk load — is COPYed straight into the table; others, and every batch
// on CockroachDB, go through the pipelined per-row statements of Write.
//
// The batch's audit entry lists a TOUCH of every row, known before the
// transaction starts: inRevision seals it while the rows are written.
func (e *Engine) importBatch(ctx context.Context, b *importBatch, opts storage.ImportOptions) (storage.Revision, error) {
	var rev storage.Revision
	entry := storage.AuditEntry{Kind: storage.AuditImport, Metadata: opts.Metadata, Changes: b.changes}
	err := e.inRevision(ctx, entry, func(w *writeTx) error {
		rev = w.rev
		if err := checkSchemaGuard(opts.SchemaRevision, w.schemaRev); err != nil {
			return err
		}
		if e.dialect == CockroachDB {
			return importRows(ctx, w.tx, w.rev, b.rows)
		}
		return copyRows(ctx, w.tx, w.rev, b.rows)
	})
	return rev, err
}

// versionColumns are the columns COPY fills: relColumns and created_rev.
var versionColumns = []string{"resource_type", "resource_id", "relation", "subject_type", "subject_id",
	"subject_relation", "caveat_name", "caveat_context", "expires_at", "created_rev"}

func copyRows(ctx context.Context, tx pgx.Tx, rev storage.Revision, rows [][]any) error {
	// Most batches replace nothing: COPY them straight into the table. If
	// a row meets a live version (a re-import, or an expired
	// relationship), replace row by row, which ends each old version
	// first.
	copied, err := tryCopy(ctx, tx, rev, rows)
	if err != nil || copied {
		return err
	}
	return importRows(ctx, tx, rev, rows)
}

// tryCopy COPYs rows (relArgs) into the table as versions created at rev,
// in a savepoint. When a row meets a live version, the unique index
// rejects the COPY: it is undone and tryCopy reports false, having
// written nothing.
func tryCopy(ctx context.Context, tx pgx.Tx, rev storage.Revision, rows [][]any) (bool, error) {
	sp, err := tx.Begin(ctx) // a savepoint
	if err != nil {
		return false, err
	}
	versions := make([][]any, len(rows))
	for i, r := range rows {
		versions[i] = append(r[:len(r):len(r)], int64(rev))
	}
	_, err = sp.CopyFrom(ctx, pgx.Identifier{"relationships"}, versionColumns, pgx.CopyFromRows(versions))
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return true, sp.Commit(ctx)
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		return false, sp.Rollback(ctx)
	default:
		return false, fmt.Errorf("copy batch: %w", err)
	}
}

// importRows writes a batch with per-row statements, pipelined in chunks.
func importRows(ctx context.Context, tx pgx.Tx, rev storage.Revision, rows [][]any) error {
	const chunk = 500
	for start := 0; start < len(rows); start += chunk {
		var batch pgx.Batch
		for _, args := range rows[start:min(start+chunk, len(rows))] {
			batch.Queue(stmtEndVersion, int64(rev), args[0], args[1], args[2], args[3], args[4], args[5])
			batch.Queue(stmtInsertVersion, append(args[:len(args):len(args)], int64(rev))...)
		}
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return err
		}
	}
	return nil
}
