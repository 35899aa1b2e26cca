package pebble

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
	"github.com/pembadb/pemba/storage/storagetest"
)

func touchOne(t testing.TB, e *Engine, spec string, meta storage.WriteMetadata) storage.Revision {
	t.Helper()
	rev, err := e.Write(context.Background(), storage.WriteRequest{Metadata: meta,
		Mutations: []storage.Mutation{{Op: storage.OpTouch, Relationship: graph.MustParseRelationship(spec)}}})
	if err != nil {
		t.Fatalf("write %s: %v", spec, err)
	}
	return rev
}

// auditLog decodes the whole audit log, oldest first.
func auditLog(t *testing.T, e *Engine) []storage.AuditEntry {
	t.Helper()
	return storagetest.ReadAuditLog(t, e, 0, 0, false)
}

// auditKeys counts the keys of the audit key space.
func auditKeys(t *testing.T, e *Engine) int {
	t.Helper()
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: []byte{spaceAudit}, UpperBound: []byte{spaceAudit + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n
}

func verify(t *testing.T, e storage.AuditLog) auditlog.VerifyResult {
	t.Helper()
	res, err := auditlog.Verify(context.Background(), e)
	if err != nil || res.Broken != nil {
		t.Fatalf("verify = %+v (break %+v), %v", res, res.Broken, err)
	}
	return res
}

// TestAuditDisabled checks that an engine opened with DisableAudit stores
// no audit key and answers every audit query with nothing, while Watch
// still returns the labels.
func TestAuditDisabled(t *testing.T) {
	ctx := context.Background()
	e := openTest(t, Options{InMemory: true, DisableAudit: true})
	meta := storage.WriteMetadata{Actor: "ci", Labels: []storage.Label{{Key: "ticket", Value: "SEC-1"}}}
	touchOne(t, e, "document:1#viewer@user:alice", meta)
	if _, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"},
		Diff: []storage.SchemaChange{{Added: true, Kind: "definition", Name: "user"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Import(ctx, benchRelationships(100), storage.ImportOptions{BatchSize: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DeleteRelationships(ctx, storage.Filter{ResourceType: "document"}, 0, meta); err != nil {
		t.Fatal(err)
	}
	if n := auditKeys(t, e); n != 0 {
		t.Fatalf("%d audit keys stored with the audit log disabled", n)
	}
	for _, err := range e.AuditEntries(ctx, 0, 0, false) {
		t.Fatalf("audit entries with the audit log disabled: %v", err)
	}
	for _, err := range e.AuditTermRevisions(ctx, auditlog.ActorTerm("ci"), 0, 0, true) {
		t.Fatalf("audit terms with the audit log disabled: %v", err)
	}
	if _, ok, err := e.AuditEntry(ctx, 1); ok || err != nil {
		t.Fatalf("audit entry 1: ok=%v err=%v", ok, err)
	}
	if rev, err := e.AuditRevisionAt(ctx, time.Now().Add(time.Hour)); rev != 0 || err != nil {
		t.Fatalf("audit revision at now = %d, %v", rev, err)
	}
	if n, err := e.TrimAudit(ctx, time.Now().Add(time.Hour)); n != 0 || err != nil {
		t.Fatalf("trim = %d, %v", n, err)
	}
	for ch, err := range e.Watch(ctx, 0) {
		if err != nil || !reflect.DeepEqual(ch.Metadata, meta) {
			t.Fatalf("watch: %+v, %v; want metadata %+v", ch.Metadata, err, meta)
		}
		break
	}
}

// TestAuditRetention checks that the collector's pass trims the audit
// log to the retention, garbage collection aside, both when called and
// from the background loop.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	t.Run("pass", func(t *testing.T) {
		e := openTest(t, Options{InMemory: true, AuditRetention: time.Hour, GCWindow: time.Minute})
		for i := range 3 {
			touchOne(t, e, fmt.Sprintf("document:%d#viewer@user:alice", i), storage.WriteMetadata{Actor: "ci"})
		}
		e.maintain(ctx, time.Now().Add(30*time.Minute)) // inside the retention
		if got := len(auditLog(t, e)); got != 3 {
			t.Fatalf("%d entries after a pass inside the retention, want 3", got)
		}
		e.maintain(ctx, time.Now().Add(2*time.Hour))
		if got := len(auditLog(t, e)); got != 0 {
			t.Fatalf("%d entries after a pass beyond the retention, want 0", got)
		}
		if n := auditKeys(t, e); n != 0 {
			t.Fatalf("%d audit keys left after the whole log was trimmed", n)
		}
		if e.floor.Load() != 3 {
			t.Fatalf("GC floor %d: the pass did not collect garbage", e.floor.Load())
		}
	})
	t.Run("background", func(t *testing.T) {
		e := openTest(t, Options{InMemory: true, AuditRetention: time.Millisecond, GCInterval: 5 * time.Millisecond})
		touchOne(t, e, "document:1#viewer@user:alice", storage.WriteMetadata{})
		deadline := time.Now().Add(20 * time.Second)
		for len(auditLog(t, e)) > 0 {
			if time.Now().After(deadline) {
				t.Fatal("the background collector never trimmed the audit log")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("negative", func(t *testing.T) {
		if _, err := Open(Options{InMemory: true, AuditRetention: -time.Hour}); err == nil {
			t.Fatal("a negative retention was accepted")
		}
	})
}

// TestAuditChainReopen checks that the hash chain continues across Close
// and Open, also after TrimAudit removed every entry.
func TestAuditChainReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	touchOne(t, e, "document:1#viewer@user:alice", storage.WriteMetadata{Actor: "a"})
	touchOne(t, e, "document:2#viewer@user:alice", storage.WriteMetadata{Actor: "a"})
	first := auditLog(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e, err = Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	touchOne(t, e, "document:3#viewer@user:alice", storage.WriteMetadata{Actor: "b"})
	entries := auditLog(t, e)
	if len(entries) != 3 || entries[2].PrevHash != first[1].Hash {
		t.Fatalf("after reopening, the new entry chains to %x, want %x", entries[len(entries)-1].PrevHash, first[1].Hash)
	}
	if res := verify(t, e); res.Entries != 3 {
		t.Fatalf("verify checked %d entries, want 3", res.Entries)
	}
	if n, err := e.TrimAudit(ctx, time.Now().Add(time.Hour)); n != 3 || err != nil {
		t.Fatalf("trim = %d, %v; want all 3", n, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = openTest(t, Options{Dir: dir})
	touchOne(t, e, "document:4#viewer@user:alice", storage.WriteMetadata{Actor: "c"})
	if got := auditLog(t, e); len(got) != 1 || got[0].PrevHash != entries[2].Hash {
		t.Fatalf("after trimming everything and reopening, the new entry chains to %x, want %x", got[0].PrevHash, entries[2].Hash)
	}
}

// TestAuditCrash checks, on a filesystem that loses unsynced writes at a
// simulated crash, that every revision the store still holds has its
// audit entry and every entry its revision, chained without a break.
func TestAuditCrash(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 8 {
		fs := vfs.NewCrashableMem()
		e, err := Open(Options{Dir: "db", fs: fs, NoSync: true, GCInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		writes := 20 + rng.IntN(200)
		for i := range writes {
			touchOne(t, e, fmt.Sprintf("document:%d#viewer@user:u%d", i%17, i), storage.WriteMetadata{Actor: "w"})
			switch rng.IntN(40) {
			case 0:
				if _, err := e.Import(ctx, benchRelationships(300), storage.ImportOptions{BatchSize: 100}); err != nil {
					t.Fatal(err)
				}
			case 1: // what a synced write would do
				if err := e.db.LogData(nil, pdb.Sync); err != nil {
					t.Fatal(err)
				}
			}
		}
		written := storage.Revision(e.head.Load())
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rng})
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		e, err = Open(Options{Dir: "db", fs: crashed, GCInterval: -1})
		if err != nil {
			t.Fatalf("round %d: reopen after a crash: %v", round, err)
		}
		head, _ := e.HeadRevision(ctx)
		t.Logf("round %d: %d of %d revisions survived the crash", round, head, written)
		entries := auditLog(t, e)
		if len(entries) != int(head) {
			t.Fatalf("round %d: %d audit entries for head %d", round, len(entries), head)
		}
		for i, en := range entries {
			ch, err := e.readChange(en.Revision)
			if err != nil || en.Revision != storage.Revision(i+1) {
				t.Fatalf("round %d: entry %d (revision %d) without its change: %v", round, i+1, en.Revision, err)
			}
			if !ch.CommittedAt.Equal(en.CommittedAt) || len(ch.Relationships) != len(en.Changes) {
				t.Fatalf("round %d: revision %d committed at %v with %d changes, its entry at %v with %d", round, en.Revision,
					ch.CommittedAt, len(ch.Relationships), en.CommittedAt, len(en.Changes))
			}
		}
		verify(t, e)
		// The chain goes on from the entry that survived.
		touchOne(t, e, "document:after#viewer@user:crash", storage.WriteMetadata{})
		verify(t, e)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditDeleteExpired checks that deleting a relationship that has
// expired (absent, as far as readers are concerned) records no change.
func TestAuditDeleteExpired(t *testing.T) {
	e := openTest(t, Options{InMemory: true})
	touchOne(t, e, "document:1#viewer@user:alice[expiration:2001-01-01T00:00:00Z]", storage.WriteMetadata{})
	rev, err := e.Write(context.Background(), storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpDelete, Relationship: graph.MustParseRelationship("document:1#viewer@user:alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, ok, err := e.AuditEntry(context.Background(), rev)
	if err != nil || !ok {
		t.Fatalf("entry %d: ok=%v err=%v", rev, ok, err)
	}
	if en, err := auditlog.Decode(raw.Value); err != nil || len(en.Changes) != 0 {
		t.Fatalf("entry of the delete of an expired relationship: %+v, %v; want no change", en.Changes, err)
	}
}

// TestAuditPages checks reads and trims that span several pages: every
// entry and term revision comes once, in order, in both directions and
// within bounds, and the consumer can close the engine mid-stream (no lock
// is held while yielding).
func TestAuditPages(t *testing.T) {
	ctx := context.Background()
	e := openTest(t, Options{InMemory: true})
	const n = 2*auditPageRevisions + 10
	for i := range n {
		touchOne(t, e, fmt.Sprintf("document:%d#viewer@user:alice", i), storage.WriteMetadata{Actor: "ci"})
	}
	for _, tc := range []struct {
		from, to storage.Revision
		desc     bool
	}{{0, 0, false}, {0, 0, true}, {7, n - 3, false}, {7, n - 3, true}, {n, n + 5, true}} {
		var want []storage.Revision
		for r := max(tc.from, 1); r <= min(tc.to, n) || (tc.to == 0 && r <= n); r++ {
			want = append(want, r)
		}
		if tc.desc {
			slices.Reverse(want)
		}
		var entries, terms []storage.Revision
		for raw, err := range e.AuditEntries(ctx, tc.from, tc.to, tc.desc) {
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, raw.Revision)
		}
		for rev, err := range e.AuditTermRevisions(ctx, auditlog.ActorTerm("ci"), tc.from, tc.to, tc.desc) {
			if err != nil {
				t.Fatal(err)
			}
			terms = append(terms, rev)
		}
		if !slices.Equal(entries, want) || !slices.Equal(terms, want) {
			t.Fatalf("[%d, %d] desc=%v: %d entries, %d term revisions, want %d", tc.from, tc.to, tc.desc, len(entries), len(terms), len(want))
		}
	}
	if rev, err := e.AuditRevisionAt(ctx, time.Now()); rev != n || err != nil {
		t.Fatalf("revision at now = %d, %v; want %d", rev, err, n)
	}
	cut := auditLog(t, e)[n-5].CommittedAt
	removed, err := e.TrimAudit(ctx, cut)
	if err != nil || removed < n-5-100 { // entries may share the instant of the cut
		t.Fatalf("trim = %d, %v", removed, err)
	}
	if left := auditLog(t, e); len(left) != n-removed {
		t.Fatalf("%d entries left after trimming %d of %d", len(left), removed, n)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	for _, err := range e.AuditEntries(cctx, 0, 0, false) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("audit entries with a cancelled context: %v", err)
		}
	}

	e = openTest(t, Options{InMemory: true})
	for i := range auditPageEntries + 1 {
		touchOne(t, e, fmt.Sprintf("document:%d#viewer@user:alice", i), storage.WriteMetadata{})
	}
	var closeErr error
	for _, err := range e.AuditEntries(ctx, 0, 0, false) {
		if err != nil {
			closeErr = err
			break
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !errors.Is(closeErr, storage.ErrClosed) {
		t.Fatalf("reading on after Close: %v", closeErr)
	}
}

// TestRevisionRecord checks the revision record's two forms: records
// written before labels existed still decode, and labels round-trip.
func TestRevisionRecord(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	old := []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 'm', 'e', 'w', 'h', 'y'}
	copy(old, (&revisionRecord{committedAt: at}).encode()[:8])
	rr, err := decodeRevisionRecord(old)
	if err != nil || !rr.committedAt.Equal(at) || !rr.schemaChanged ||
		!reflect.DeepEqual(rr.meta, storage.WriteMetadata{Actor: "me", Reason: "why"}) {
		t.Fatalf("record in the original form = %+v, %v", rr, err)
	}
	for _, meta := range []storage.WriteMetadata{
		{Actor: "me", Reason: "why"},
		{Actor: "ci", Reason: "", Labels: []storage.Label{{Key: "a", Value: ""}, {Key: "ticket", Value: "SEC-1"}}},
		{Labels: []storage.Label{{Key: "", Value: "x"}}},
	} {
		in := revisionRecord{committedAt: at, meta: meta}
		out, err := decodeRevisionRecord(in.encode())
		if err != nil || !reflect.DeepEqual(out, in) {
			t.Fatalf("round trip of %+v = %+v, %v", in, out, err)
		}
	}
	withLabels := (&revisionRecord{committedAt: at, meta: storage.WriteMetadata{Labels: []storage.Label{{Key: "k", Value: "v"}}}}).encode()
	for n := 9; n < len(withLabels); n++ {
		if _, err := decodeRevisionRecord(withLabels[:n]); err == nil {
			t.Fatalf("a record cut to %d of %d bytes decoded", n, len(withLabels))
		}
	}
}

// termKeys counts the audit index keys ("a t ...").
func termKeys(t *testing.T, e *Engine) int {
	t.Helper()
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: []byte{spaceAudit, auditTerm}, UpperBound: []byte{spaceAudit, auditTerm + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	return n
}

// termRevs lists the revisions indexed under term, oldest first.
func termRevs(t *testing.T, e *Engine, term string) []storage.Revision {
	t.Helper()
	var out []storage.Revision
	for rev, err := range e.AuditTermRevisions(context.Background(), term, 0, 0, false) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rev)
	}
	return out
}

// TestAuditIndexBehind checks the deferred term index: a write stores no
// term key, the indexer adds them and records how far it got, a reopened
// store resumes from there, and a store without the mark (written before
// the index was deferred, when every entry was indexed with its write)
// counts all its entries as indexed.
func TestAuditIndexBehind(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *Engine {
		e, err := Open(Options{Dir: dir, GCInterval: -1, noAuditIndexer: true})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	r1 := touchOne(t, e, "document:1#viewer@user:alice", storage.WriteMetadata{Actor: "a"})
	r2 := touchOne(t, e, "document:1#viewer@user:bob", storage.WriteMetadata{Actor: "a"})
	if n := termKeys(t, e); n != 0 {
		t.Fatalf("%d term keys before indexing, want none", n)
	}
	want := []storage.Revision{r1, r2}
	if got := termRevs(t, e, auditlog.ResourceTerm("document", "1")); !slices.Equal(got, want) {
		t.Fatalf("unindexed: document:1 at %v, want %v", got, want)
	}
	// Closed without indexing: the next start indexes from the mark.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open()
	if got := e.auditIndexed.Load(); got != 0 {
		t.Fatalf("indexed through %d after reopening, want 0", got)
	}
	if err := e.IndexAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.auditIndexed.Load(); got != uint64(r2) {
		t.Fatalf("indexed through %d, want %d", got, r2)
	}
	indexed := termKeys(t, e)
	if indexed == 0 {
		t.Fatal("no term keys after indexing")
	}
	if got := termRevs(t, e, auditlog.ResourceTerm("document", "1")); !slices.Equal(got, want) {
		t.Fatalf("indexed: document:1 at %v, want %v", got, want)
	}
	// A store without the mark: its entries are taken as indexed.
	if err := e.db.Delete(keyAuditIndexed, pdb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = open()
	defer e.Close()
	if got := e.auditIndexed.Load(); got != uint64(r2) {
		t.Fatalf("a store without the mark is indexed through %d, want %d", got, r2)
	}
	r3 := touchOne(t, e, "document:1#viewer@user:carol", storage.WriteMetadata{Actor: "a"})
	want = append(want, r3)
	if got := termRevs(t, e, auditlog.ResourceTerm("document", "1")); !slices.Equal(got, want) {
		t.Fatalf("index and tail: document:1 at %v, want %v", got, want)
	}
	if err := e.IndexAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := termKeys(t, e); n <= indexed {
		t.Fatalf("%d term keys after indexing a third entry, want more than %d", n, indexed)
	}
}

// TestAuditIndexerRuns checks that the background indexer catches up with
// writes on its own.
func TestAuditIndexerRuns(t *testing.T) {
	e := openTest(t, Options{InMemory: true})
	var last storage.Revision
	for i := range 20 {
		last = touchOne(t, e, fmt.Sprintf("document:%d#viewer@user:alice", i), storage.WriteMetadata{Actor: "a"})
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.auditIndexed.Load() < uint64(last) {
		if time.Now().After(deadline) {
			t.Fatalf("indexed through %d after 10s, want %d", e.auditIndexed.Load(), last)
		}
		time.Sleep(time.Millisecond)
	}
	if got := termRevs(t, e, auditlog.SubjectTerm("user", "alice")); len(got) != 20 {
		t.Fatalf("user:alice indexed at %d revisions, want 20", len(got))
	}
}

// TestAuditPostingLists checks term queries over posting lists of many
// sizes: every range, both orders, across pages of the reader and across
// lists, after the index and its unindexed tail, and after a trim that
// cut through a list.
func TestAuditPostingLists(t *testing.T) {
	ctx := context.Background()
	e := openTest(t, Options{InMemory: true, noAuditIndexer: true})
	const writes = 2600
	var trimAt time.Time
	for i := 1; i <= writes; i++ {
		touchOne(t, e, fmt.Sprintf("document:%d#viewer@user:u", i%3), storage.WriteMetadata{Actor: "a"})
		if i%37 == 0 || i%500 == 0 { // lists of 37, fewer, and up to a page
			if err := e.IndexAudit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if i == 1010 { // inside the list of 1001–1036
			time.Sleep(2 * time.Millisecond)
			trimAt = time.Now()
			time.Sleep(2 * time.Millisecond)
		}
	}
	if got := e.auditIndexed.Load(); got == writes || got < writes-40 {
		t.Fatalf("indexed through %d: want a short unindexed tail below %d", got, writes)
	}
	// Revision i was write i: the actor has them all, document:1 every third.
	check := func(first storage.Revision) {
		t.Helper()
		rng := rand.New(rand.NewPCG(1, 2))
		cases := [][2]storage.Revision{{0, 0}, {1, writes}, {37, 37}, {36, 38}, {1000, 1001}, {writes - 5, writes + 5}, {1023, 2049}}
		for range 60 {
			lo := storage.Revision(rng.IntN(writes) + 1)
			cases = append(cases, [2]storage.Revision{lo, lo + storage.Revision(rng.IntN(1500))})
		}
		for _, c := range cases {
			for _, desc := range []bool{false, true} {
				for _, term := range []string{auditlog.ActorTerm("a"), auditlog.ResourceTerm("document", "1")} {
					var want []storage.Revision
					for r := max(c[0], first); r <= writes && (c[1] == 0 || r <= c[1]); r++ {
						if term == auditlog.ActorTerm("a") || r%3 == 1 {
							want = append(want, r)
						}
					}
					if desc {
						slices.Reverse(want)
					}
					var got []storage.Revision
					for rev, err := range e.AuditTermRevisions(ctx, term, c[0], c[1], desc) {
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, rev)
					}
					if !slices.Equal(got, want) {
						t.Fatalf("%s in [%d, %d] desc=%v: got %d revisions %v…, want %d %v…", term, c[0], c[1], desc, len(got), head(got), len(want), head(want))
					}
				}
			}
		}
	}
	check(1)
	if n, err := e.TrimAudit(ctx, trimAt); err != nil || n != 1010 {
		t.Fatalf("trim: %d entries, %v; want 1010", n, err)
	}
	check(1011)
}

func head(revs []storage.Revision) []storage.Revision { return revs[:min(len(revs), 8)] }

// TestHandedTerms: terms handed over by writes are taken once, not kept
// for revisions the indexer has passed, and bounded.
func TestHandedTerms(t *testing.T) {
	var h handedTerms
	var indexed atomic.Uint64
	indexed.Store(10)
	h.put(10, []string{"a|x"}, &indexed) // already indexed: dropped
	h.put(11, []string{"a|y"}, &indexed)
	h.put(12, []string{"a|z"}, &indexed)
	if _, ok := h.take(10); ok {
		t.Fatal("terms kept for an indexed revision")
	}
	if got, ok := h.take(11); !ok || !slices.Equal(got, []string{"a|y"}) {
		t.Fatalf("take(11) = %v, %v", got, ok)
	}
	if _, ok := h.take(11); ok {
		t.Fatal("terms taken twice")
	}
	indexed.Store(12)
	h.drop(11, 12)
	if len(h.terms) != 0 {
		t.Fatalf("%d terms left after the index passed them", len(h.terms))
	}
	for rev := range storage.Revision(handedMax + 10) {
		h.put(13+rev, nil, &indexed)
	}
	if len(h.terms) != handedMax {
		t.Fatalf("%d terms waiting, want at most %d", len(h.terms), handedMax)
	}
}

// TestAuditToggled checks a data directory whose revisions are recorded
// both ways — by their audit entries alone while the log was on, by
// revision records and change logs while it was off — across restarts:
// the head, Watch and garbage collection read both.
func TestAuditToggled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var want []string
	for i, disable := range []bool{false, true, false} {
		e, err := Open(Options{Dir: dir, GCInterval: -1, DisableAudit: disable})
		if err != nil {
			t.Fatal(err)
		}
		if head, _ := e.HeadRevision(ctx); int(head) != 2*i {
			t.Fatalf("reopened with the audit log disabled=%v: head %d, want %d", disable, head, 2*i)
		}
		for j := range 2 {
			spec := fmt.Sprintf("document:d%d#viewer@user:u%d", i, j)
			touchOne(t, e, spec, storage.WriteMetadata{Actor: fmt.Sprint("actor", i)})
			want = append(want, fmt.Sprintf("actor%d TOUCH %s", i, spec))
		}
		var got []string
		for ch, err := range e.Watch(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %s %s", ch.Metadata.Actor, ch.Relationships[0].Op, storagetest.Format(ch.Relationships[0].Relationship)))
			if len(got) == len(want) {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: watch from 0 = %q, want %q", i, got, want)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	e := openTest(t, Options{Dir: dir})
	touchOne(t, e, "document:d0#viewer@user:u0", storage.WriteMetadata{}) // shadows the first version
	if err := e.CollectGarbage(ctx, time.Now().Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	prefix := appendComponent(appendComponent([]byte{spaceForward}, "document"), "d0")
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(nil, prefix)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("after GC, document:d0 has %d forward versions, want 2 (one per relationship)", n)
	}
}
