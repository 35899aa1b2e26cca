package sql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
	"github.com/pembadb/pemba/storage/storagetest"
)

// openConfig opens an engine on url with cfg (URL and AutoMigrate set).
func openConfig(t testing.TB, url string, cfg Config) *Engine {
	t.Helper()
	cfg.URL, cfg.AutoMigrate = url, true
	e, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// decodedEntries reads the whole audit log, decoded.
func decodedEntries(t *testing.T, e *Engine) []storage.AuditEntry {
	t.Helper()
	return storagetest.ReadAuditLog(t, e, 0, 0, false)
}

func count(t *testing.T, e *Engine, table string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func touchOne(t *testing.T, e *Engine, r graph.Relationship, meta storage.WriteMetadata) storage.Revision {
	t.Helper()
	rev, err := e.Write(context.Background(), storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestAuditChainAcrossEngines: two servers on one database, writing at
// the same time, build one chain — each entry chains to the one committed
// before it, whichever server wrote it — with one entry per revision.
func TestAuditChainAcrossEngines(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	engines := []*Engine{openConfig(t, url, Config{}), openConfig(t, url, Config{})}
	var wg sync.WaitGroup
	for i, e := range engines {
		for w := range 2 {
			wg.Go(func() {
				for n := range 15 {
					r := rel("document", fmt.Sprintf("e%d-w%d-%d", i, w, n), "viewer", "user", "alice")
					if _, err := e.Write(ctx, storage.WriteRequest{Metadata: storage.WriteMetadata{Actor: fmt.Sprintf("server-%d", i)},
						Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: r}}}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Go(func() {
		src := func(yield func(graph.Relationship, error) bool) {
			for n := range 50 {
				if !yield(rel("folder", fmt.Sprint(n), "viewer", "user", "bob"), nil) {
					return
				}
			}
		}
		if _, err := engines[0].Import(ctx, src, storage.ImportOptions{BatchSize: 7}); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		for range 3 {
			if _, err := engines[1].WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}
	head, err := engines[0].HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range engines {
		res, err := auditlog.Verify(ctx, e)
		if err != nil || res.Broken != nil || res.Entries != int(head) || res.First != 1 || res.Last != head {
			t.Fatalf("verify = %+v (broken: %+v), %v; want %d intact entries", res, res.Broken, err, head)
		}
	}
	servers := map[string]bool{}
	for _, en := range decodedEntries(t, engines[0]) {
		servers[en.Metadata.Actor] = true
	}
	if !servers["server-0"] || !servers["server-1"] {
		t.Fatalf("entries come from %v, want both servers", servers)
	}
	// Both servers' indexers, racing, index every entry exactly once.
	for _, e := range engines {
		wg.Go(func() {
			if err := e.IndexAudit(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	want := 0
	for _, en := range decodedEntries(t, engines[0]) {
		want += len(auditlog.Terms(&en))
	}
	var indexed int64
	if err := engines[0].pool.QueryRow(ctx, stmtAuditIndexed).Scan(&indexed); err != nil {
		t.Fatal(err)
	}
	if got := termPairs(t, engines[0]); got != want || indexed != int64(head) {
		t.Fatalf("%d (term, revision) pairs indexed through %d; want %d through %d", got, indexed, want, head)
	}
	if rows := count(t, engines[0], "audit_terms"); rows >= want {
		t.Fatalf("%d posting lists for %d (term, revision) pairs: the actor's and types' terms repeat, want fewer lists", rows, want)
	}
}

// termPairs counts the (term, revision) pairs of every posting list.
func termPairs(t *testing.T, e *Engine) int {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), "SELECT revision, earlier FROM audit_terms")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var last int64
		var earlier []byte
		if err := rows.Scan(&last, &earlier); err != nil {
			t.Fatal(err)
		}
		list, err := auditlog.DecodePostingList(nil, storage.Revision(last), earlier)
		if err != nil {
			t.Fatal(err)
		}
		n += len(list)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAuditCommitTimes: an entry's commit time is its revision's, as
// Watch reports it, and never earlier than the last one written — even
// when the server that wrote it had a clock ahead of this one's.
func TestAuditCommitTimes(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	r1 := touchOne(t, e, rel("document", "1", "viewer", "user", "alice"), storage.WriteMetadata{})
	// A server whose clock runs an hour fast wrote last.
	ahead := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	if _, err := e.pool.Exec(ctx, "UPDATE revision_counter SET last_commit = $1 WHERE id = 1", ahead); err != nil {
		t.Fatal(err)
	}
	r2 := touchOne(t, e, rel("document", "2", "viewer", "user", "alice"), storage.WriteMetadata{})
	r3 := touchOne(t, e, rel("document", "3", "viewer", "user", "alice"), storage.WriteMetadata{})
	entries := decodedEntries(t, e)
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	if at := entries[0].CommittedAt; at.After(time.Now()) || at.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("revision %d committed at %v, want about now", r1, at)
	}
	for _, en := range entries[1:] {
		if !en.CommittedAt.Equal(ahead) {
			t.Fatalf("revision %d committed at %v, want %v: commit times must not go back", en.Revision, en.CommittedAt, ahead)
		}
	}
	i := 0
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for ch, err := range e.Watch(wctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if !ch.CommittedAt.Equal(entries[i].CommittedAt) {
			t.Fatalf("watch: revision %d committed at %v, its audit entry at %v", ch.Revision, ch.CommittedAt, entries[i].CommittedAt)
		}
		if i++; ch.Revision == r3 {
			break
		}
	}
	if got, err := e.AuditRevisionAt(ctx, ahead); err != nil || got != r3 {
		t.Fatalf("revision at %v = %d, %v; want %d (of %d and %d)", ahead, got, err, r3, r2, r3)
	}
}

// TestAuditDeleteOfExpired: deleting a relationship that has expired
// records nothing (it was absent); deleting a live one records the
// version removed, with its expiration.
func TestAuditDeleteOfExpired(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	future := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	expired := rel("document", "1", "viewer", "user", "alice")
	expired.Expiration = &past
	live := rel("document", "1", "viewer", "user", "bob")
	live.Expiration = &future
	if _, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpTouch, Relationship: expired}, {Op: storage.OpTouch, Relationship: live}}}); err != nil {
		t.Fatal(err)
	}
	del, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpDelete, Relationship: rel("document", "1", "viewer", "user", "alice")},
		{Op: storage.OpDelete, Relationship: rel("document", "1", "viewer", "user", "bob")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := e.AuditEntry(ctx, del)
	if err != nil || !ok {
		t.Fatalf("audit entry %d: %v, %v", del, ok, err)
	}
	en, err := auditlog.Decode(raw.Value)
	if err != nil {
		t.Fatal(err)
	}
	if len(en.Changes) != 1 || en.Changes[0].Op != storage.OpDelete || en.Changes[0].Relationship.Subject.Object.ID != "bob" ||
		en.Changes[0].Relationship.Expiration == nil || !en.Changes[0].Relationship.Expiration.Equal(future) {
		t.Fatalf("changes %+v, want the DELETE of bob's live version (expiring %v) only", en.Changes, future)
	}
}

// TestAuditDisabled: with the audit log off nothing is stored, labels
// still reach Watch, and a server with it on chains from the last entry
// written, skipping the unaudited revisions.
func TestAuditDisabled(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	on, off := openConfig(t, url, Config{}), openConfig(t, url, Config{DisableAudit: true})
	first := touchOne(t, on, rel("document", "1", "viewer", "user", "alice"), storage.WriteMetadata{})
	labels := []storage.Label{{Key: "ticket", Value: "SEC-1"}}
	touchOne(t, off, rel("document", "2", "viewer", "user", "alice"), storage.WriteMetadata{Actor: "quiet", Labels: labels})
	if _, err := off.DeleteRelationships(ctx, storage.Filter{ResourceType: "document"}, 1, storage.WriteMetadata{}); err != nil {
		t.Fatal(err)
	}
	if _, err := off.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpDelete, Relationship: rel("document", "2", "viewer", "user", "alice")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := off.Import(ctx, func(yield func(graph.Relationship, error) bool) {
		yield(rel("document", "3", "viewer", "user", "alice"), nil)
	}, storage.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := off.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}}); err != nil {
		t.Fatal(err)
	}
	last := touchOne(t, on, rel("document", "4", "viewer", "user", "alice"), storage.WriteMetadata{})
	if got := ids(t, on, last); fmt.Sprint(got) != "[3@alice 4@alice]" {
		t.Fatalf("at head: %v", got)
	}
	entries := decodedEntries(t, off) // reads what is stored, whoever wrote it
	if len(entries) != 2 || entries[0].Revision != first || entries[1].Revision != last {
		t.Fatalf("entries %v, want revisions %d and %d only", entries, first, last)
	}
	if entries[1].PrevHash != entries[0].Hash {
		t.Fatalf("revision %d does not chain to %d", last, first)
	}
	if res, err := auditlog.Verify(ctx, on); err != nil || res.Broken != nil {
		t.Fatalf("verify = %+v, %v", res, err)
	}
	if n := count(t, on, "audit_terms WHERE revision > 1 AND revision < "+fmt.Sprint(last)); n != 0 {
		t.Fatalf("%d terms of unaudited revisions", n)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for ch, err := range off.Watch(wctx, first) {
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Actor != "quiet" || !slices.Equal(ch.Metadata.Labels, labels) {
			t.Fatalf("watch: metadata %+v, want actor quiet with %v", ch.Metadata, labels)
		}
		break
	}
}

// TestAuditRetentionTrimsInGC: with AuditRetention set, garbage
// collection trims the entries older than it, and only those.
func TestAuditRetentionTrimsInGC(t *testing.T) {
	ctx := context.Background()
	e := openConfig(t, pg.NewDatabase(t), Config{AuditRetention: time.Hour})
	for i := range 3 {
		touchOne(t, e, rel("document", fmt.Sprint(i), "viewer", "user", "alice"), storage.WriteMetadata{Actor: "a"})
	}
	if err := e.CollectGarbage(ctx, time.Now().Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, e, "audit_entries"); n != 3 {
		t.Fatalf("%d entries after GC within the retention, want 3", n)
	}
	if err := e.CollectGarbage(ctx, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, terms := count(t, e, "audit_entries"), count(t, e, "audit_terms"); n != 0 || terms != 0 {
		t.Fatalf("%d entries and %d terms after GC past the retention, want none", n, terms)
	}
	rev := touchOne(t, e, rel("document", "x", "viewer", "user", "alice"), storage.WriteMetadata{})
	if res, err := auditlog.Verify(ctx, e); err != nil || res.Broken != nil || res.First != rev {
		t.Fatalf("verify after trimming everything = %+v, %v", res, err)
	}
}

// insertEntries stores n sealed entries from revision first on, each
// changing `changes` relationships, with their terms, behind the engine's
// back: the quick way to fill the log for the paging and trim tests.
func insertEntries(t *testing.T, e *Engine, first storage.Revision, n, changes int, committedAt time.Time) {
	t.Helper()
	var b pgx.Batch
	for i := range n {
		en := storage.AuditEntry{Revision: first + storage.Revision(i), CommittedAt: committedAt.UTC(), Kind: storage.AuditImport}
		for c := range changes {
			en.Changes = append(en.Changes, storage.AuditChange{Op: storage.OpTouch,
				Relationship: rel("document", fmt.Sprintf("%d-%d", i, c), "viewer", "user", fmt.Sprintf("u%d-%d", i, c))})
		}
		s := sealEntry(en, nil)
		if s.err != nil {
			t.Fatal(s.err)
		}
		b.Queue("INSERT INTO audit_entries (revision, committed_at, value) VALUES ($1, $2, $3)", int64(en.Revision), en.CommittedAt, s.value)
		b.Queue("INSERT INTO audit_terms (term, revision) SELECT unnest($1::TEXT[]), $2::BIGINT", auditlog.Terms(&en), int64(en.Revision))
	}
	b.Queue("UPDATE audit_index SET indexed_through = greatest(indexed_through, $1)", int64(first)+int64(n)-1)
	if err := e.pool.SendBatch(context.Background(), &b).Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditPaging reads ranges that span several pages — of entries cut
// by count and by bytes, and of term revisions — both ways.
func TestAuditPaging(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	now := time.Now()
	insertEntries(t, e, 1, 150, 1, now)      // small: pages cut by count
	insertEntries(t, e, 151, 40, 5_000, now) // ~250 KB each: pages cut by bytes
	if _, err := e.pool.Exec(ctx, `INSERT INTO audit_terms (term, revision)
SELECT 'x', i FROM generate_series(1, 25000) i`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE audit_index SET indexed_through = 25000"); err != nil {
		t.Fatal(err)
	}
	seq := func(lo, hi int, desc bool) []storage.Revision {
		var out []storage.Revision
		for r := lo; r <= hi; r++ {
			out = append(out, storage.Revision(r))
		}
		if desc {
			slices.Reverse(out)
		}
		return out
	}
	for _, c := range []struct {
		from, to storage.Revision
		lo, hi   int
	}{{0, 0, 1, 190}, {3, 170, 3, 170}, {150, 0, 150, 190}, {191, 0, 1, 0}, {5, 4, 1, 0}} {
		for _, desc := range []bool{false, true} {
			var got []storage.Revision
			for raw, err := range e.AuditEntries(ctx, c.from, c.to, desc) {
				if err != nil {
					t.Fatal(err)
				}
				if rev, err := auditlog.Revision(raw.Value); err != nil || rev != raw.Revision {
					t.Fatalf("entry stored under %d holds revision %d (%v)", raw.Revision, rev, err)
				}
				got = append(got, raw.Revision)
			}
			if want := seq(c.lo, c.hi, desc); !slices.Equal(got, want) {
				t.Fatalf("entries [%d, %d] desc=%v: %d revisions %v..., want %d", c.from, c.to, desc, len(got), firstFew(got), len(want))
			}
		}
	}
	for _, c := range []struct {
		from, to storage.Revision
		lo, hi   int
	}{{0, 0, 1, 25000}, {9_999, 20_001, 9_999, 20_001}, {24_000, 0, 24_000, 25_000}} {
		for _, desc := range []bool{false, true} {
			var got []storage.Revision
			for rev, err := range e.AuditTermRevisions(ctx, "x", c.from, c.to, desc) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rev)
			}
			if want := seq(c.lo, c.hi, desc); !slices.Equal(got, want) {
				t.Fatalf("term revisions [%d, %d] desc=%v: %d revisions %v..., want %d", c.from, c.to, desc, len(got), firstFew(got), len(want))
			}
		}
	}
	// Term y: posting lists of 37 revisions (the last one shorter), many
	// pages of them.
	var lasts []int64
	var earlier [][]byte
	for start := 1; start <= 25_000; start += 37 {
		list := seq(start, min(start+36, 25_000), false)
		lasts = append(lasts, int64(list[len(list)-1]))
		earlier = append(earlier, auditlog.AppendPostingList(nil, list))
	}
	if _, err := e.pool.Exec(ctx, stmtInsertAuditTerms, slices.Repeat([]string{"y"}, len(lasts)), lasts, earlier); err != nil {
		t.Fatal(err)
	}
	termRange := func(term string, from, to storage.Revision, desc bool) []storage.Revision {
		var got []storage.Revision
		for rev, err := range e.AuditTermRevisions(ctx, term, from, to, desc) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rev)
		}
		return got
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ranges := [][2]int{{1, 25_000}, {37, 38}, {38, 38}, {36, 74}, {24_990, 25_000}, {2_000, 9_000}}
	for range 20 {
		lo := rng.IntN(25_000) + 1
		ranges = append(ranges, [2]int{lo, min(25_000, lo+rng.IntN(5_000))})
	}
	for _, r := range ranges {
		for _, desc := range []bool{false, true} {
			if got, want := termRange("y", storage.Revision(r[0]), storage.Revision(r[1]), desc), seq(r[0], r[1], desc); !slices.Equal(got, want) {
				t.Fatalf("posting lists [%d, %d] desc=%v: %d revisions %v..., want %d %v...", r[0], r[1], desc, len(got), firstFew(got), len(want), firstFew(want))
			}
		}
	}
	// A trim that cut through a list: revisions below the oldest entry
	// kept are not reported.
	if _, err := e.pool.Exec(ctx, "DELETE FROM audit_entries WHERE revision < 50"); err != nil {
		t.Fatal(err)
	}
	for _, desc := range []bool{false, true} {
		if got, want := termRange("y", 0, 100, desc), seq(50, 100, desc); !slices.Equal(got, want) {
			t.Fatalf("after a trim, desc=%v: %v, want %v", desc, got, want)
		}
	}
	// Stopping early, and a cancelled context.
	for range e.AuditEntries(ctx, 0, 0, false) {
		break
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range e.AuditEntries(cctx, 0, 0, false) {
		if err == nil {
			t.Fatal("a cancelled read yielded an entry")
		}
		break
	}
}

func firstFew(revs []storage.Revision) []storage.Revision { return revs[:min(len(revs), 5)] }

// TestTrimAuditBatches trims more entries than one batch holds, and
// entries with more terms than one batch's budget, then an entry too
// corrupt to decode: every trimmed entry's terms go with it.
func TestTrimAuditBatches(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	old := time.Now().Add(-48 * time.Hour)
	insertEntries(t, e, 1, trimBatch*2+10, 1, old)
	insertEntries(t, e, trimBatch*2+11, 3, trimTermBudget/3, old) // 2*budget/3 terms each
	keep := storage.Revision(trimBatch*2 + 14)
	insertEntries(t, e, keep, 2, 1, time.Now())
	n, err := e.TrimAudit(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != trimBatch*2+13 {
		t.Fatalf("trim = %d, %v; want %d", n, err, trimBatch*2+13)
	}
	if left := count(t, e, fmt.Sprintf("audit_terms WHERE revision < %d", keep)); left != 0 {
		t.Fatalf("%d terms of trimmed entries left", left)
	}
	if left := count(t, e, "audit_entries"); left != 2 {
		t.Fatalf("%d entries left, want 2", left)
	}
	kept := count(t, e, "audit_terms")
	if kept == 0 {
		t.Fatal("the kept entries lost their terms")
	}
	// A corrupt entry is trimmed with its terms all the same.
	if _, err := e.pool.Exec(ctx, "UPDATE audit_entries SET value = 'garbage', committed_at = $1 WHERE revision = $2", old, int64(keep)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.TrimAudit(ctx, time.Now().Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("trim the corrupt entry = %d, %v; want 1", n, err)
	}
	if left := count(t, e, fmt.Sprintf("audit_terms WHERE revision = %d", keep)); left != 0 {
		t.Fatalf("%d terms of the corrupt entry left", left)
	}
	if left := count(t, e, "audit_terms"); left == 0 || left >= kept {
		t.Fatalf("%d terms left of %d, want only the last entry's", left, kept)
	}
}

// TestLabelsColumn: labels are stored sorted, flattened, and read back.
func TestLabelsColumn(t *testing.T) {
	in := []storage.Label{{Key: "ticket", Value: "SEC-2"}, {Key: "approver", Value: "bob"}, {Key: "approver", Value: "amy"}, {Key: "ticket", Value: "SEC-1"}}
	col := labelsColumn(in)
	if want := "[approver amy approver bob ticket SEC-1 ticket SEC-2]"; fmt.Sprint(col) != want {
		t.Fatalf("column %v, want %s", col, want)
	}
	back, err := labelsFromColumn(col)
	if err != nil || len(back) != 4 || back[0] != (storage.Label{Key: "approver", Value: "amy"}) {
		t.Fatalf("read back %v, %v", back, err)
	}
	if col := labelsColumn(nil); col != nil {
		t.Fatalf("no labels stored as %v, want NULL", col)
	}
	if _, err := labelsFromColumn([]string{"odd"}); err == nil || !strings.Contains(err.Error(), "pairs") {
		t.Fatalf("odd column: err = %v", err)
	}
}

// TestAuditChainAfterTrimmingEverything: once a trim has removed every
// entry, the next write chains to the newest entry trimmed.
func TestAuditChainAfterTrimmingEverything(t *testing.T) {
	ctx := context.Background()
	e := openTest(t)
	for _, id := range []string{"1", "2", "3"} {
		if _, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel("document", id, "viewer", "user", "alice")}}}); err != nil {
			t.Fatal(err)
		}
	}
	before := decodedEntries(t, e)
	if n, err := e.TrimAudit(ctx, time.Now().Add(time.Hour)); err != nil || n != 3 {
		t.Fatalf("trim = %d, %v; want all 3", n, err)
	}
	if _, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel("document", "4", "viewer", "user", "alice")}}}); err != nil {
		t.Fatal(err)
	}
	after := decodedEntries(t, e)
	if len(after) != 1 || after[0].PrevHash != before[2].Hash {
		t.Fatalf("after trimming everything, the new entry chains to %x, want %x", after[0].PrevHash, before[2].Hash)
	}
}

// TestAuditChainKnownHead: a server writing alone chains each entry to
// the one it committed before without reading the chain's head; after
// another server's write, or a write of its own that failed once its
// entry was sealed, it reads the head, and the chain stays whole.
func TestAuditChainKnownHead(t *testing.T) {
	ctx := context.Background()
	url := pg.NewDatabase(t)
	a, b := openConfig(t, url, Config{}), openConfig(t, url, Config{})
	write := func(e *Engine, id, actor string) error {
		_, err := e.Write(ctx, storage.WriteRequest{Metadata: storage.WriteMetadata{Actor: actor},
			Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: rel("document", id, "viewer", "user", "alice")}}})
		return err
	}
	reads := func(e *Engine) int64 { return e.headReads.Load() }
	for i := range 5 {
		if err := write(a, fmt.Sprint("a", i), "user:a"); err != nil {
			t.Fatal(err)
		}
	}
	if got := reads(a); got != 1 {
		t.Fatalf("5 writes of one server read the chain's head %d times, want once (the first)", got)
	}
	// Another server's write in between: the next one reads the head.
	if err := write(b, "b0", "user:b"); err != nil {
		t.Fatal(err)
	}
	if err := write(a, "a5", "user:a"); err != nil {
		t.Fatal(err)
	}
	if got := reads(a); got != 2 {
		t.Fatalf("after another server's write, %d head reads, want 2", got)
	}
	// A write that fails after sealing its entry gives its revision back;
	// another server commits that revision; the next write must chain to
	// that server's entry, not to the one that failed.
	if _, err := a.pool.Exec(ctx, `CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF position('\x706f69736f6e'::bytea IN NEW.value) > 0 THEN RAISE EXCEPTION 'poisoned entry'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_poison();`); err != nil {
		t.Fatal(err)
	}
	if err := write(a, "a6", "poison"); err == nil {
		t.Fatal("a write whose entry the database refuses committed")
	}
	if err := write(b, "b1", "user:b"); err != nil {
		t.Fatal(err)
	}
	if err := write(a, "a7", "user:a"); err != nil {
		t.Fatal(err)
	}
	head, err := a.HeadRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := auditlog.Verify(ctx, a)
	if err != nil || res.Broken != nil || res.Entries != int(head) {
		t.Fatalf("verify = %+v (broken: %+v), %v; want %d intact entries", res, res.Broken, err, head)
	}
}
