package sql

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

func rel(resource, id, relation, subjectType, subjectID string) graph.Relationship {
	return graph.Relationship{
		Resource: graph.ObjectRef{Type: resource, ID: id},
		Relation: relation,
		Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: subjectType, ID: subjectID}},
	}
}

func ids(t *testing.T, e *Engine, rev storage.Revision) []string {
	t.Helper()
	r, err := e.SnapshotReader(context.Background(), rev)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rel, err := range r.QueryRelationships(context.Background(), storage.Filter{}, storage.QueryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rel.Resource.ID+"@"+rel.Subject.Object.ID)
	}
	return out
}

// TestWatchSeesOtherEngines: a watcher sees revisions committed through
// another Engine (another server process) on the same database. Its poll
// interval is an hour, so only PostgreSQL's notifications can wake it.
func TestWatchSeesOtherEngines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := pg.NewDatabase(t)
	open := func() *Engine {
		e, err := Open(ctx, Config{URL: url, AutoMigrate: true, WatchPollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	watcher, writer := open(), open()
	// Writes go one at a time, each after the watcher saw the previous
	// one, so that one poll cannot catch several: at most the first (and
	// the one after the listener's start-up wake) can be found without a
	// notification.
	seen := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := range 5 {
			if i > 0 {
				select {
				case <-seen:
				case <-ctx.Done():
					return
				}
			}
			_, err := writer.Write(ctx, storage.WriteRequest{
				Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel("document", fmt.Sprint(i), "viewer", "user", "alice")}},
				Metadata:  storage.WriteMetadata{Actor: "other-process"},
			})
			if err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	}()
	var revs []storage.Revision
	for ch, err := range watcher.Watch(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Actor != "other-process" || len(ch.Relationships) != 1 {
			t.Fatalf("change %+v", ch)
		}
		revs = append(revs, ch.Revision)
		if len(revs) == 5 {
			break
		}
		select {
		case seen <- struct{}{}:
		case <-ctx.Done():
		}
	}
	// The fifth change can be watched before its Write returns; let it
	// return before the context is cancelled.
	<-writerDone
	if fmt.Sprint(revs) != "[1 2 3 4 5]" {
		t.Fatalf("watched revisions %v, want 1..5", revs)
	}
}

// TestCockroachDBCodePath runs the Go code that only the CockroachDB
// dialect takes — the savepoint retry protocol and the row-at-a-time
// import — against PostgreSQL, where both work when no transaction
// conflicts. It checks the code, not CockroachDB's SQL (see
// TestCockroachDBStatementsArePortable for that).
//
// Every statement the engine sends meanwhile is recorded and checked for
// PostgreSQL-only constructs, which covers the statements generated at run
// time as well as the fixed ones.
func TestCockroachDBCodePath(t *testing.T) {
	ctx := context.Background()
	// Migrated with the PostgreSQL DDL, which is not checked. The audit
	// indexer is run by hand below, so no goroutine uses the engine while
	// the test swaps its dialect and pool.
	e := openTestConfig(t, Config{noAuditIndexer: true})
	e.dialect = CockroachDB
	rec := &statementRecorder{}
	cfg := e.pool.Config()
	cfg.ConnConfig.Tracer = rec
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.pool.Close()
	e.pool = traced
	defer func() {
		if len(rec.statements) < 10 {
			t.Fatalf("recorded only %d statements", len(rec.statements))
		}
		for _, s := range rec.statements {
			if bad := postgresOnly.FindString(s); bad != "" {
				t.Errorf("the CockroachDB path sent %q, which uses %q", s, bad)
			}
		}
	}()

	r1, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpCreate, Relationship: rel("document", "1", "viewer", "user", "alice")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The indexer's statements are recorded too.
		if err := e.IndexAudit(ctx); err != nil {
			t.Errorf("index the audit log: %v", err)
		}
	}()
	_, err = e.Write(ctx, storage.WriteRequest{
		Preconditions: []storage.Precondition{{MustMatch: true, Filter: storage.Filter{ResourceType: "document"}}},
		Mutations: []storage.Mutation{
			{Op: storage.OpCreate, Relationship: rel("document", "1", "viewer", "user", "alice")},
		}})
	var exists *storage.AlreadyExistsError
	if !errors.As(err, &exists) {
		t.Fatalf("second create: err = %v, want AlreadyExistsError", err)
	}
	imported := []graph.Relationship{
		rel("document", "2", "viewer", "user", "bob"),
		rel("document", "1", "viewer", "user", "alice"), // replaces the written one
		rel("document", "3", "viewer", "user", "carol"),
		rel("document", "2", "viewer", "user", "bob"), // twice in one batch
	}
	seq := func(yield func(graph.Relationship, error) bool) {
		for _, r := range imported {
			if !yield(r, nil) {
				return
			}
		}
	}
	res, err := e.Import(ctx, seq, storage.ImportOptions{BatchSize: 3, Metadata: storage.WriteMetadata{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 4 || len(res.Revisions) != 2 {
		t.Fatalf("import = %+v, want 4 in 2 revisions", res)
	}
	head := res.Revisions[1]
	if got := ids(t, e, head); fmt.Sprint(got) != "[1@alice 2@bob 3@carol]" {
		t.Fatalf("at head: %v", got)
	}
	if got := ids(t, e, r1); fmt.Sprint(got) != "[1@alice]" {
		t.Fatalf("at %d: %v", r1, got)
	}
	del, err := e.DeleteRelationships(ctx, storage.Filter{ResourceType: "document"}, 2, storage.WriteMetadata{})
	if err != nil || del.Deleted != 2 || !del.More {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	if err := e.CollectGarbage(ctx, time.Now().Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.SnapshotReader(ctx, r1); !errors.Is(err, storage.ErrRevisionTooOld) {
		t.Fatalf("reader at %d after GC: err = %v", r1, err)
	}
	if got := ids(t, e, del.Revision); fmt.Sprint(got) != "[3@carol]" {
		t.Fatalf("after delete: %v", got)
	}
	if _, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}, Metadata: storage.WriteMetadata{}}); err != nil {
		t.Fatal(err)
	}
	head, err = e.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.SnapshotReader(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := r.ReadSchema(ctx); err != nil || s.Revision != head {
		t.Fatalf("read schema = %+v, %v", s, err)
	}
	for _, err := range r.ReverseQueryRelationships(ctx, storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"carol", "dave"}}}, storage.QueryOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	for ch, err := range e.Watch(ctx, del.Revision) {
		if err != nil || ch.Revision != del.Revision+1 || !ch.SchemaChanged {
			t.Fatalf("watch: %+v, %v", ch, err)
		}
		break
	}
	// Schema-guarded writes as core's Writer sends them: a schema write
	// whose check reads through the write's transaction, then a write and
	// an import guarded by the newest schema (committed) and by the one it
	// replaced (refused).
	checked := false
	s2, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}\ndefinition document {}"},
		Check: func(ctx context.Context, r storage.Reader) error {
			checked = true
			for _, err := range r.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{}) {
				if err != nil {
					return err
				}
			}
			_, err := r.ReadSchema(ctx)
			return err
		}})
	if err != nil || !checked {
		t.Fatalf("schema write with a check: %v (check ran: %v)", err, checked)
	}
	guarded := func(guard storage.Revision, id string) error {
		_, err := e.Write(ctx, storage.WriteRequest{SchemaRevision: guard, Mutations: []storage.Mutation{
			{Op: storage.OpTouch, Relationship: rel("document", id, "viewer", "user", "dave")}}})
		return err
	}
	if err := guarded(head, "4"); !errors.Is(err, storage.ErrSchemaChanged) {
		t.Fatalf("write guarded by the replaced schema: %v, want ErrSchemaChanged", err)
	}
	if err := guarded(s2, "4"); err != nil {
		t.Fatalf("write guarded by the newest schema: %v", err)
	}
	one := func(yield func(graph.Relationship, error) bool) {
		yield(rel("document", "5", "viewer", "user", "erin"), nil)
	}
	if _, err := e.Import(ctx, one, storage.ImportOptions{SchemaRevision: head}); !errors.Is(err, storage.ErrSchemaChanged) {
		t.Fatalf("import guarded by the replaced schema: %v, want ErrSchemaChanged", err)
	}
	if _, err := e.Import(ctx, one, storage.ImportOptions{SchemaRevision: s2}); err != nil {
		t.Fatalf("import guarded by the newest schema: %v", err)
	}
	if head, err = e.HeadRevision(ctx); err != nil {
		t.Fatal(err)
	}
	// The audit log: every revision has its entry, the chain holds, and
	// the reads and the trim run.
	if res, err := auditlog.Verify(ctx, e); err != nil || res.Broken != nil || res.Entries != int(head) {
		t.Fatalf("verify = %+v, %v; want %d intact entries", res, err, head)
	}
	for _, err := range e.AuditTermRevisions(ctx, auditlog.ResourceTypeTerm("document"), 0, 0, true) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := e.AuditEntry(ctx, head); err != nil || !ok {
		t.Fatalf("audit entry %d: ok=%v, %v", head, ok, err)
	}
	if rev, err := e.AuditRevisionAt(ctx, time.Now().Add(time.Minute)); err != nil || rev != head {
		t.Fatalf("audit revision now = %d, %v; want %d", rev, err, head)
	}
	if n, err := e.TrimAudit(ctx, time.Now().Add(time.Minute)); err != nil || n != int(head) {
		t.Fatalf("trim = %d, %v; want %d", n, err, head)
	}
}

// statementRecorder is a pgx tracer that keeps the text of every statement
// sent, batched ones included; COPY is recorded as "COPY table".
type statementRecorder struct {
	mu         sync.Mutex // guards statements
	statements []string
}

func (r *statementRecorder) add(s string) {
	r.mu.Lock()
	r.statements = append(r.statements, s)
	r.mu.Unlock()
}

func (r *statementRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL)
	return ctx
}
func (r *statementRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *statementRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (r *statementRecorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.add(d.SQL)
}
func (r *statementRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
func (r *statementRecorder) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	r.add("COPY " + d.TableName.Sanitize())
	return ctx
}
func (r *statementRecorder) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

// TestGarbageCollectionDeletesRows checks what CollectGarbage removes from
// the tables: ended versions at or below the floor, relationships that
// expired before the window began, revision rows below the floor — and
// nothing still readable.
func TestGarbageCollectionDeletesRows(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	now := time.Now()
	soon := now.Add(time.Hour)
	expiring := rel("document", "2", "viewer", "user", "bob")
	expiring.Expiration = &soon
	for _, m := range []storage.Mutation{
		{Op: storage.OpTouch, Relationship: rel("document", "1", "viewer", "user", "alice")},
		{Op: storage.OpTouch, Relationship: expiring},
		{Op: storage.OpTouch, Relationship: rel("document", "1", "viewer", "user", "alice")}, // replaces version 1
		{Op: storage.OpTouch, Relationship: rel("document", "3", "viewer", "user", "carol")},
	} {
		if _, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{m}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) int {
		var n int
		if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// With the audit log on, the entries are the revisions' records.
	if v, r, a := count("relationships"), count("revision_records"), count("audit_entries"); v != 4 || r != 0 || a != 4 {
		t.Fatalf("before GC: %d versions, %d revision records, %d audit entries; want 4, 0 and 4", v, r, a)
	}
	// The window (24h) began an hour after bob's relationship expired.
	if err := e.CollectGarbage(ctx, soon.Add(25*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, a := count("relationships"), count("audit_entries"); v != 2 || a != 4 {
		t.Fatalf("after GC: %d versions, %d audit entries; want 2 (alice, carol) and 4 (GC leaves the log alone)", v, a)
	}
	if got := ids(t, e, 4); fmt.Sprint(got) != "[1@alice 3@carol]" {
		t.Fatalf("at head after GC: %v", got)
	}
}

// TestImportReplaces covers both PostgreSQL import paths: a batch of new
// relationships goes in with one COPY; a batch that replaces live ones
// (here with a new caveat) falls back to ending each old version, so the
// earlier revision still reads the old payload.
func TestImportReplaces(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	seq := func(rs ...graph.Relationship) func(func(graph.Relationship, error) bool) {
		return func(yield func(graph.Relationship, error) bool) {
			for _, r := range rs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
	a, b, c := rel("document", "1", "viewer", "user", "a"), rel("document", "2", "viewer", "user", "b"), rel("document", "3", "viewer", "user", "c")
	first, err := e.Import(ctx, seq(a, b), storage.ImportOptions{BatchSize: 10, Metadata: storage.WriteMetadata{}})
	if err != nil {
		t.Fatal(err)
	}
	caveated := a
	caveated.Caveat = &graph.Caveat{Name: "weekdays", Context: map[string]any{"tz": "UTC"}}
	second, err := e.Import(ctx, seq(c, caveated), storage.ImportOptions{BatchSize: 10, Metadata: storage.WriteMetadata{}})
	if err != nil {
		t.Fatal(err)
	}
	read := func(rev storage.Revision) string {
		r, err := e.SnapshotReader(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rel, err := range r.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			s := rel.Resource.ID
			if rel.Caveat != nil {
				s += "[" + rel.Caveat.Name + "]"
			}
			out = append(out, s)
		}
		return fmt.Sprint(out)
	}
	if got := read(first.Revisions[0]); got != "[1 2]" {
		t.Fatalf("after the first import: %s", got)
	}
	if got := read(second.Revisions[0]); got != "[1[weekdays] 2 3]" {
		t.Fatalf("after the replacing import: %s", got)
	}
	var versions int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM relationships").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != 4 {
		t.Fatalf("%d versions stored, want 4 (a, b, c and a's replacement)", versions)
	}
}

func TestPoolSize(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	for _, c := range []struct {
		url  string
		want int32
	}{
		{url, int32(max(DefaultMaxConns, 2*runtime.GOMAXPROCS(0)))},
		{url + "&pool_max_conns=3", 3},
	} {
		e, err := Open(ctx, Config{URL: c.url, AutoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.pool.Config().MaxConns; got != c.want {
			t.Errorf("%s: pool size %d, want %d", c.url, got, c.want)
		}
		e.Close()
	}
}

// TestImportRefreshesStatistics: a bulk import into an empty table leaves
// the table vacuumed and the planner statistics of what it wrote, not of
// the empty table; a small import, or one small beside the table, leaves
// them to autovacuum.
func TestImportRefreshesStatistics(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	measured := func() float64 {
		t.Helper()
		var n float64
		if err := e.pool.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = 'relationships'::regclass").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rels := func(n int) func(func(graph.Relationship, error) bool) {
		return func(yield func(graph.Relationship, error) bool) {
			for i := range n {
				if !yield(rel("doc", fmt.Sprintf("d%d", i), "viewer", "user", fmt.Sprintf("u%d", i%97)), nil) {
					return
				}
			}
		}
	}
	// A load is one import stream, in batches that are imports of their
	// own: only its end (AfterImport) refreshes the table.
	load := func(n int) {
		t.Helper()
		if _, err := e.Import(ctx, rels(n), storage.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		e.AfterImport(ctx, n)
	}
	load(refreshMinRows - 1)
	if n := measured(); n > 0 {
		t.Fatalf("after importing %d relationships the table was measured (%v rows): want that left to autovacuum", refreshMinRows-1, n)
	}
	load(6 * refreshMinRows)
	if n := measured(); n < 5*refreshMinRows {
		t.Errorf("after a bulk import of %d relationships the planner counts %v rows: want them measured", 6*refreshMinRows, n)
	}
	vacuums := func() int64 { // manual ones: autovacuum counts apart
		t.Helper()
		var n int64
		if err := e.pool.QueryRow(ctx, "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'relationships'::regclass").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if vacuums() != 1 {
		t.Errorf("after a bulk import the relationships table was vacuumed %d times, want once", vacuums())
	}
	// A load under a fifth of what the planner counts leaves it be.
	load(refreshMinRows)
	if n := vacuums(); n != 1 {
		t.Errorf("an import of %d relationships into a table of %v refreshed it (%d vacuums)", refreshMinRows, measured(), n)
	}
}
