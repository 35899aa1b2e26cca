package sql

import (
	"context"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// DefaultImportBatchSize is the batch size Import uses when given 0.
const DefaultImportBatchSize = 1000

// Import writes rels with TOUCH semantics, batchSize relationships per
// revision. A batch is validated before it is written; a bad relationship
// or a failing source stops the import after the batches already
// committed, which the result reports.
func (e *Engine) Import(ctx context.Context, rels iter.Seq2[graph.Relationship, error], batchSize int, meta storage.WriteMetadata) (storage.ImportResult, error) {
	var res storage.ImportResult
	if err := e.checkOpen(); err != nil {
		return res, err
	}
	if batchSize < 0 {
		return res, fmt.Errorf("import: %w: batch size: %d is negative", storage.ErrInvalidArgument, batchSize)
	}
	if batchSize == 0 {
		batchSize = DefaultImportBatchSize
	}
	batch := newImportBatch(batchSize)
	flush := func() error {
		if batch.len() == 0 {
			return nil
		}
		rev, err := e.importBatch(ctx, batch, meta)
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

// importBatch holds one batch's rows, encoded and deduplicated: a
// relationship given twice keeps its last payload (TOUCH semantics), at
// the position it first appeared.
type importBatch struct {
	rows  [][]any
	index map[[6]string]int // identity → position in rows
	count int               // relationships given, duplicates included
}

func newImportBatch(size int) *importBatch {
	return &importBatch{rows: make([][]any, 0, min(size, 1<<16)), index: make(map[[6]string]int)}
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
	k := forwardKey(rel)
	if i, dup := b.index[k]; dup {
		b.rows[i] = args
		return nil
	}
	b.index[k] = len(b.rows)
	b.rows = append(b.rows, args)
	return nil
}

func (b *importBatch) len() int { return b.count }

func (b *importBatch) reset() {
	b.rows = b.rows[:0]
	clear(b.index)
	b.count = 0
}

// importBatch writes one batch in its own revision.
//
// On PostgreSQL the rows are COPYed into a temporary table, then two set
// statements end the live versions they replace and insert them: far
// fewer round trips and index probes than row-at-a-time statements.
// CockroachDB's temporary tables are experimental, so there the batch
// goes through the same pipelined per-row statements as Write.
func (e *Engine) importBatch(ctx context.Context, b *importBatch, meta storage.WriteMetadata) (storage.Revision, error) {
	var rev storage.Revision
	err := e.inRevision(ctx, meta, false, func(tx pgx.Tx, r storage.Revision) error {
		rev = r
		if e.dialect == CockroachDB {
			return importRows(ctx, tx, r, b.rows)
		}
		return copyRows(ctx, tx, r, b.rows)
	})
	return rev, err
}

// Statements of the PostgreSQL bulk-import path (PostgreSQL only: a
// temporary table and COPY).
const (
	pgCreateImportTable = `CREATE TEMPORARY TABLE IF NOT EXISTS import_batch (
    resource_type    TEXT COLLATE "C" NOT NULL,
    resource_id      TEXT COLLATE "C" NOT NULL,
    relation         TEXT COLLATE "C" NOT NULL,
    subject_type     TEXT COLLATE "C" NOT NULL,
    subject_id       TEXT COLLATE "C" NOT NULL,
    subject_relation TEXT COLLATE "C" NOT NULL,
    caveat_name      TEXT NOT NULL,
    caveat_context   JSONB,
    expires_at       BIGINT
) ON COMMIT DELETE ROWS`

	pgEndImportedVersions = `UPDATE relationships r SET deleted_rev = $1
FROM import_batch b
WHERE r.resource_type = b.resource_type AND r.resource_id = b.resource_id AND r.relation = b.relation
  AND r.subject_type = b.subject_type AND r.subject_id = b.subject_id AND r.subject_relation = b.subject_relation
  AND r.deleted_rev IS NULL`

	pgInsertImported = `INSERT INTO relationships (` + relColumns + `, created_rev)
SELECT ` + relColumns + `, $1 FROM import_batch`
)

var importColumns = []string{"resource_type", "resource_id", "relation", "subject_type", "subject_id",
	"subject_relation", "caveat_name", "caveat_context", "expires_at"}

func copyRows(ctx context.Context, tx pgx.Tx, rev storage.Revision, rows [][]any) error {
	if _, err := tx.Exec(ctx, pgCreateImportTable); err != nil {
		return fmt.Errorf("create import table: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_batch"}, importColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copy batch: %w", err)
	}
	// Probe the live index once per imported row. During a bulk import the
	// statistics of relationships lag far behind its size, and the planner
	// would otherwise hash-join the batch against every live row, making
	// each batch cost as much as the table.
	if _, err := tx.Exec(ctx, "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"); err != nil {
		return fmt.Errorf("plan import: %w", err)
	}
	if _, err := tx.Exec(ctx, pgEndImportedVersions, int64(rev)); err != nil {
		return fmt.Errorf("replace imported relationships: %w", err)
	}
	if _, err := tx.Exec(ctx, pgInsertImported, int64(rev)); err != nil {
		return fmt.Errorf("insert imported relationships: %w", err)
	}
	return nil
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
