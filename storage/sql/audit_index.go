package sql

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// The audit log's term index trails the log (migration 0005): writes store
// their entries only, off the serialized write path, and every server runs
// an indexer that adds the terms of entries above audit_index's
// indexed_through mark, many entries per transaction, holding the mark's
// row lock so servers never index the same entries twice and a trim never
// removes an entry while it is being indexed.

const (
	// auditIndexDelay is how long the indexer lets commits accumulate
	// after one wakes it, so that one transaction indexes many entries:
	// each pass costs a handful of statements and a row per term every
	// entry repeats (actor, types, labels), whatever its size. Term
	// queries decode the entries above the mark, so a longer delay only
	// makes them decode more.
	auditIndexDelay = 100 * time.Millisecond
	// auditIndexInterval is how often it looks for unindexed entries
	// without being woken: entries a server wrote and stopped before
	// indexing, or other servers' entries on CockroachDB, which announces
	// no commits.
	auditIndexInterval = time.Second
	// auditIndexBatch bounds the entries one indexer transaction covers.
	auditIndexBatch = 512
)

// indexAuditContinuously runs the indexer until ctx ends.
func (e *Engine) indexAuditContinuously(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(auditIndexInterval)
	defer tick.Stop()
	for {
		woken := e.commitSignal()
		if err := e.IndexAudit(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, storage.ErrClosed) && !e.closed.Load() {
			log.Printf("pemba: audit log index: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-woken:
			select {
			case <-ctx.Done():
				return
			case <-time.After(auditIndexDelay):
			}
		}
	}
}

// IndexAudit indexes every audit entry committed when it starts and not
// indexed yet, and returns once the index has caught up with them. The
// background indexer calls it; tests call it to reach a known state.
// Entries committed meanwhile are left to the next call: chasing them
// would index a busy log in ever smaller transactions, each costing the
// same few statements.
func (e *Engine) IndexAudit(ctx context.Context) error {
	if err := e.checkOpen(); err != nil || !e.audit {
		return err
	}
	var indexed, newest int64
	if err := e.pool.QueryRow(ctx, stmtAuditIndexLag).Scan(&indexed, &newest); err != nil {
		return fmt.Errorf("index audit log: %w", unavailable(err))
	}
	for indexed < newest {
		advanced := false
		err := runWrite(ctx, e.dialect, e.pool, func(tx pgx.Tx) error {
			var err error
			advanced, indexed, err = e.indexAuditBatch(ctx, tx)
			return err
		})
		if err != nil {
			return fmt.Errorf("index audit log: %w", err)
		}
		if !advanced {
			// The entries above the mark went (a trim) between the two
			// reads: nothing is left to index.
			return nil
		}
	}
	return nil
}

// indexAuditBatch indexes up to auditIndexBatch entries above the mark and
// advances it, in tx; its queries end with ctx. An entry that cannot be decoded (a damaged row,
// which VerifyAudit reports) is logged and left out of the index.
// advanced reports that the mark moved; through is the mark after the
// batch (when another server's indexer has moved it, that is ahead of
// what this call indexed).
func (e *Engine) indexAuditBatch(ctx context.Context, tx pgx.Tx) (advanced bool, through int64, err error) {
	var indexed int64
	if err := tx.QueryRow(ctx, stmtLockAuditIndex).Scan(&indexed); err != nil {
		return false, 0, fmt.Errorf("lock the mark: %w", err)
	}
	rows, err := tx.Query(ctx, stmtUnindexedEntries, indexed, auditIndexBatch)
	if err != nil {
		return false, 0, fmt.Errorf("read entries above %d: %w", indexed, err)
	}
	lists := make(map[string][]storage.Revision)
	through = indexed
	for rows.Next() {
		var rev int64
		var value []byte
		if err := rows.Scan(&rev, &value); err != nil {
			rows.Close()
			return false, 0, err
		}
		through = rev
		terms, err := auditlog.DecodeTerms(value)
		if err != nil {
			log.Printf("pemba: audit log index: entry %d left out: %v", rev, err)
			continue
		}
		for _, term := range terms {
			lists[term] = append(lists[term], storage.Revision(rev))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, 0, fmt.Errorf("read entries above %d: %w", indexed, err)
	}
	if through == indexed {
		return false, indexed, nil
	}
	// One posting list per term: its newest revision, and the others
	// encoded (nil, stored as NULL, for a list of one).
	terms := make([]string, 0, len(lists))
	for term := range lists {
		terms = append(terms, term)
	}
	slices.Sort(terms)
	lasts := make([]int64, len(terms))
	earlier := make([][]byte, len(terms))
	for i, term := range terms {
		revs := lists[term]
		lasts[i] = int64(revs[len(revs)-1])
		if len(revs) > 1 {
			earlier[i] = auditlog.AppendPostingList(nil, revs)
		}
	}
	var batch pgx.Batch
	if len(terms) > 0 {
		batch.Queue(stmtInsertAuditTerms, terms, lasts, earlier)
	}
	batch.Queue(stmtAdvanceAuditIndex, through)
	return true, through, tx.SendBatch(ctx, &batch).Close()
}
