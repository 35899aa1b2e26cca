package sql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// counterValue is the relationship `counter:c#value@number:<n>`: a counter
// kept in the store, so that increments are read-modify-write cycles.
func counterValue(n int) graph.Relationship {
	return graph.Relationship{
		Resource: graph.ObjectRef{Type: "counter", ID: "c"},
		Relation: "value",
		Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "number", ID: strconv.Itoa(n)}},
	}
}

// TestNoLostUpdate runs 8 concurrent writers, each incrementing a counter
// by reading its value n and writing n+1 under the precondition that n is
// still current. Every acknowledged increment must survive: the final
// value equals the number of acknowledged writes, their revisions are
// distinct, and the history holds every value from 1 to the final one,
// each at the revision its writer was told.
func TestNoLostUpdate(t *testing.T) {
	e := openTest(t)
	ctx := context.Background()
	if _, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpCreate, Relationship: counterValue(0)}}}); err != nil {
		t.Fatal(err)
	}
	const writers = 8
	perWriter := 12
	if testing.Short() {
		perWriter = 4
	}
	var mu sync.Mutex // guards acked
	acked := map[int]storage.Revision{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for done := 0; done < perWriter; {
				n, err := readCounter(ctx, e)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				rev, err := e.Write(ctx, storage.WriteRequest{
					Preconditions: []storage.Precondition{{MustMatch: true, Filter: storage.Filter{
						ResourceType: "counter", ResourceIDs: []string{"c"}, Relation: "value",
						Subject: &storage.SubjectFilter{Type: "number", IDs: []string{strconv.Itoa(n)}},
					}}},
					Mutations: []storage.Mutation{
						{Op: storage.OpDelete, Relationship: counterValue(n)},
						{Op: storage.OpCreate, Relationship: counterValue(n + 1)},
					},
					Metadata: storage.WriteMetadata{Actor: fmt.Sprintf("writer-%d", w)},
				})
				if errors.Is(err, storage.ErrPreconditionFailed) {
					continue // another writer got there first: read again
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				if prev, dup := acked[n+1]; dup {
					t.Errorf("value %d acknowledged twice, at revisions %d and %d", n+1, prev, rev)
				}
				acked[n+1] = rev
				mu.Unlock()
				done++
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := writers * perWriter
	final, err := readCounter(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if final != total || len(acked) != total {
		t.Fatalf("counter = %d with %d acknowledged increments, want %d", final, len(acked), total)
	}
	// Each value v is visible exactly from the revision that wrote it, and
	// the revisions rise with the values.
	var prevRev storage.Revision
	for v := 1; v <= total; v++ {
		rev, ok := acked[v]
		if !ok {
			t.Fatalf("value %d was never acknowledged", v)
		}
		if rev <= prevRev {
			t.Fatalf("value %d at revision %d, not after value %d at %d", v, rev, v-1, prevRev)
		}
		for at, want := range map[storage.Revision]int{rev - 1: v - 1, rev: v} {
			r, err := e.SnapshotReader(ctx, at)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := counterAt(ctx, r); err != nil || got != want {
				t.Fatalf("counter at revision %d = %d, %v; want %d (value %d was written at %d)", at, got, err, want, v, rev)
			}
		}
		prevRev = rev
	}
}

func readCounter(ctx context.Context, e *Engine) (int, error) {
	head, err := e.HeadRevision(ctx)
	if err != nil {
		return 0, err
	}
	r, err := e.SnapshotReader(ctx, head)
	if err != nil {
		return 0, err
	}
	return counterAt(ctx, r)
}

func counterAt(ctx context.Context, r storage.Reader) (int, error) {
	var values []int
	for rel, err := range r.QueryRelationships(ctx, storage.Filter{ResourceType: "counter", ResourceIDs: []string{"c"}}, storage.QueryOptions{}) {
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(rel.Subject.Object.ID)
		if err != nil {
			return 0, err
		}
		values = append(values, n)
	}
	if len(values) != 1 {
		return 0, fmt.Errorf("counter has %d values %v at revision %d, want one", len(values), values, r.Revision())
	}
	return values[0], nil
}

// TestRunWriteRetriesWholeTransaction checks the PostgreSQL retry loop: a
// serialization failure discards the attempt's writes and runs the
// function again in a fresh transaction, whose commit is what counts.
func TestRunWriteRetriesWholeTransaction(t *testing.T) {
	e := openTest(t)
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, "CREATE TABLE attempts (n INT)"); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := runWrite(ctx, PostgreSQL, e.pool, func(tx pgx.Tx) error {
		calls++
		if _, err := tx.Exec(ctx, "INSERT INTO attempts VALUES ($1)", calls); err != nil {
			return err
		}
		if calls < 3 {
			return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001", Message: "injected serialization failure"})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("runWrite: %v", err)
	}
	var rows []int
	r, err := e.pool.Query(ctx, "SELECT n FROM attempts ORDER BY n")
	if err != nil {
		t.Fatal(err)
	}
	rows, err = pgx.CollectRows(r, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(rows) != 1 || rows[0] != 3 {
		t.Fatalf("calls = %d, rows = %v; want 3 calls and only the last attempt's row", calls, rows)
	}

	// A non-retryable error is returned after one attempt, nothing written.
	calls = 0
	boom := errors.New("boom")
	err = runWrite(ctx, PostgreSQL, e.pool, func(tx pgx.Tx) error {
		calls++
		if _, err := tx.Exec(ctx, "INSERT INTO attempts VALUES (100)"); err != nil {
			return err
		}
		return boom
	})
	var n int
	if qerr := e.pool.QueryRow(ctx, "SELECT count(*) FROM attempts").Scan(&n); qerr != nil {
		t.Fatal(qerr)
	}
	if !errors.Is(err, boom) || calls != 1 || n != 1 {
		t.Fatalf("err = %v, calls = %d, rows = %d; want boom, 1 call, 1 row", err, calls, n)
	}
}

// TestRevisionsHaveNoGaps checks that failed writes leave no hole in the
// revision sequence, which Watch's polling relies on.
func TestRevisionsHaveNoGaps(t *testing.T) {
	e := openTest(t)
	ctx := context.Background()
	a := counterValue(1)
	for i, req := range []storage.WriteRequest{
		{Mutations: []storage.Mutation{{Op: storage.OpCreate, Relationship: a}}},
		{Mutations: []storage.Mutation{{Op: storage.OpCreate, Relationship: a}}}, // conflict
		{Preconditions: []storage.Precondition{{MustMatch: false, Filter: storage.Filter{ResourceType: "counter"}}}},
		{Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: a}}},
	} {
		_, err := e.Write(ctx, req)
		if (err != nil) != (i == 1 || i == 2) {
			t.Fatalf("write %d: err = %v", i, err)
		}
	}
	var revs []int64
	rows, err := e.pool.Query(ctx, "SELECT revision FROM revision_records UNION ALL SELECT revision FROM audit_entries ORDER BY revision")
	if err != nil {
		t.Fatal(err)
	}
	if revs, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(revs) != "[1 2]" {
		t.Fatalf("revisions = %v, want [1 2]", revs)
	}
}

func TestDescribeFilter(t *testing.T) {
	ellipsis, member := "", "member"
	for _, c := range []struct {
		f    storage.Filter
		want string
	}{
		{storage.Filter{}, "any relationship"},
		{storage.Filter{ResourceType: "document", ResourceIDs: []string{"1", "2"}, Relation: "viewer"}, "resource document:[1 2]#viewer"},
		{storage.Filter{Subject: &storage.SubjectFilter{Type: "user", IDs: []string{"alice"}, Relation: &ellipsis}}, "resource *, subject user:[alice]#..."},
		{storage.Filter{ResourceType: "folder", Subject: &storage.SubjectFilter{Type: "group", Relation: &member}}, "resource folder, subject group#member"},
	} {
		if got := describeFilter(c.f); got != c.want {
			t.Errorf("describeFilter(%+v) = %q, want %q", c.f, got, c.want)
		}
	}
}
