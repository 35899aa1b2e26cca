package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// Tamper rewrites the stored encoding of the audit entry of rev with
// edit, bypassing the engine's write path, as someone with write access to
// the datastore could. Each engine's test supplies one (WithTamper) so the
// suite can check that Verify notices.
type Tamper func(t *testing.T, e storage.Engine, rev storage.Revision, edit func(value []byte) []byte)

// ReadAuditLog reads the audit entries in [from, to] (to 0: open),
// decoded, checking each entry's hash and that the stored revision
// matches the entry.
func ReadAuditLog(t *testing.T, e storage.AuditLog, from, to storage.Revision, desc bool) []storage.AuditEntry {
	t.Helper()
	var out []storage.AuditEntry
	for raw, err := range e.AuditEntries(ctx, from, to, desc) {
		if err != nil {
			t.Fatalf("audit entries [%d, %d]: %v", from, to, err)
		}
		if !auditlog.Intact(raw.Value) {
			t.Fatalf("audit entry of revision %d: hash does not match its content", raw.Revision)
		}
		entry, err := auditlog.Decode(raw.Value)
		if err != nil {
			t.Fatalf("audit entry of revision %d: %v", raw.Revision, err)
		}
		if entry.Revision != raw.Revision {
			t.Fatalf("audit entry stored under %d is revision %d's", raw.Revision, entry.Revision)
		}
		out = append(out, entry)
	}
	return out
}

// formatEntry renders an entry without its times and hashes:
// `5 write alice "reason" [k=v] +CREATE rel; -DELETE rel; schema +definition x`.
func formatEntry(en storage.AuditEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s %q", en.Revision, en.Kind, en.Metadata.Actor, en.Metadata.Reason)
	for _, l := range en.Metadata.Labels {
		fmt.Fprintf(&b, " %s=%s", l.Key, l.Value)
	}
	for _, c := range en.Changes {
		fmt.Fprintf(&b, " | %s %s", c.Op, Format(c.Relationship))
	}
	for _, s := range en.Schema {
		sign := "-"
		if s.Added {
			sign = "+"
		}
		fmt.Fprintf(&b, " | %s%s %s", sign, s.Kind, s.Name)
		if s.Detail != "" {
			fmt.Fprintf(&b, " (%s)", s.Detail)
		}
	}
	return b.String()
}

func formatEntries(entries []storage.AuditEntry) []string {
	out := make([]string, len(entries))
	for i, en := range entries {
		out[i] = formatEntry(en)
	}
	return out
}

// auditWorkload writes one revision of every kind and returns the entries
// the log must hold for them, formatted.
func auditWorkload(t *testing.T, e storage.Engine) []string {
	t.Helper()
	exp := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	caveated := R("document:1#viewer@user:carol")
	caveated.Caveat = &graph.Caveat{Name: "ip_allowed", Context: map[string]any{"cidr": "10.0.0.0/8", "n": 2.5}}
	expiring := R("document:1#viewer@user:dave")
	expiring.Expiration = &exp
	meta := storage.WriteMetadata{Actor: "ci", Reason: "SEC-42 approved by bob",
		Labels: []storage.Label{{Key: "ticket", Value: "SEC-42"}, {Key: "approver", Value: "bob"}}}
	schemaRev, err := e.WriteSchema(ctx, storage.SchemaWrite{
		Schema:   storage.StoredSchema{Text: "definition user {}"},
		Metadata: storage.WriteMetadata{Actor: "admin"},
		Diff:     []storage.SchemaChange{{Added: true, Kind: "definition", Name: "user"}, {Added: true, Kind: "relation", Name: "document#viewer", Detail: "relation viewer: user"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w1, err := e.Write(ctx, storage.WriteRequest{Metadata: meta, Mutations: []storage.Mutation{
		{Op: storage.OpCreate, Relationship: R("document:1#viewer@user:alice")},
		{Op: storage.OpTouch, Relationship: caveated},
		{Op: storage.OpTouch, Relationship: expiring},
		{Op: storage.OpDelete, Relationship: R("document:1#viewer@user:nobody")}, // absent: no change
	}})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := e.Write(ctx, storage.WriteRequest{Metadata: storage.WriteMetadata{Actor: "ops"}, Mutations: []storage.Mutation{
		{Op: storage.OpDelete, Relationship: R("document:1#viewer@user:carol")}, // the removed version is recorded whole
		{Op: storage.OpTouch, Relationship: R("document:1#viewer@user:alice")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	imp, err := e.Import(ctx, seqOf(rels("folder:a#viewer@group:eng#member", "folder:b#viewer@user:erin", "folder:c#viewer@user:erin")),
		storage.ImportOptions{BatchSize: 2, Metadata: storage.WriteMetadata{Actor: "importer", Reason: "bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	del, err := e.DeleteRelationships(ctx, storage.Filter{ResourceType: "folder", Subject: &storage.SubjectFilter{Type: "user"}}, 0,
		storage.WriteMetadata{Actor: "cleanup", Labels: []storage.Label{{Key: "ticket", Value: "SEC-43"}}})
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		fmt.Sprintf("%d schema admin \"\" | +definition user | +relation document#viewer (relation viewer: user)", schemaRev),
		fmt.Sprintf("%d write ci %q approver=bob ticket=SEC-42 | CREATE document:1#viewer@user:alice | TOUCH %s | TOUCH %s",
			w1, meta.Reason, Format(caveated), Format(expiring)),
		fmt.Sprintf("%d write ops \"\" | DELETE %s | TOUCH document:1#viewer@user:alice", w2, Format(caveated)),
		fmt.Sprintf("%d import importer \"bulk\" | TOUCH folder:a#viewer@group:eng#member | TOUCH folder:b#viewer@user:erin", imp.Revisions[0]),
		fmt.Sprintf("%d import importer \"bulk\" | TOUCH folder:c#viewer@user:erin", imp.Revisions[1]),
		fmt.Sprintf("%d delete cleanup \"\" ticket=SEC-43 | DELETE folder:b#viewer@user:erin | DELETE folder:c#viewer@user:erin", del.Revision),
	}
}

func testAuditEntries(t *testing.T, e storage.Engine) {
	before := time.Now().Add(-time.Minute)
	want := auditWorkload(t, e)
	entries := ReadAuditLog(t, e, 0, 0, false)
	equalStrings(t, "audit log", formatEntries(entries), want)
	for i, en := range entries {
		if en.CommittedAt.Before(before) || en.CommittedAt.After(time.Now().Add(time.Minute)) {
			t.Fatalf("entry %d committed at %v, not about now", en.Revision, en.CommittedAt)
		}
		if i > 0 && en.CommittedAt.Before(entries[i-1].CommittedAt) {
			t.Fatalf("entry %d committed before entry %d", en.Revision, entries[i-1].Revision)
		}
	}
	// Descending, and bounded ranges.
	desc := slices.Clone(want)
	slices.Reverse(desc)
	equalStrings(t, "audit log, newest first", formatEntries(ReadAuditLog(t, e, 0, 0, true)), desc)
	mid := entries[1].Revision
	last := entries[3].Revision
	equalStrings(t, "audit log [2nd, 4th]", formatEntries(ReadAuditLog(t, e, mid, last, false)), want[1:4])
	equalStrings(t, "audit log [2nd, 4th] newest first", formatEntries(ReadAuditLog(t, e, mid, last, true)), desc[2:5])
	// One entry by revision.
	raw, ok, err := e.AuditEntry(ctx, mid)
	if err != nil || !ok {
		t.Fatalf("audit entry %d: ok=%v err=%v", mid, ok, err)
	}
	one, err := auditlog.Decode(raw.Value)
	if err != nil || formatEntry(one) != want[1] {
		t.Fatalf("audit entry %d = %q (%v), want %q", mid, formatEntry(one), err, want[1])
	}
	if _, ok, err := e.AuditEntry(ctx, head(t, e)+1); ok || err != nil {
		t.Fatalf("audit entry above the head: ok=%v err=%v, want none", ok, err)
	}
}

func testAuditAtomic(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	schemaRev := writeSchemaText(t, e, "definition user {}")
	failing := []struct {
		name string
		run  func() error
	}{
		{"precondition", func() error {
			_, err := e.Write(ctx, storage.WriteRequest{
				Preconditions: []storage.Precondition{{MustMatch: true, Filter: storage.Filter{ResourceType: "nothing"}}},
				Mutations:     mutations(storage.OpTouch, R("document:2#viewer@user:bob")),
			})
			return err
		}},
		{"create conflict", func() error {
			_, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpCreate, R("document:1#viewer@user:alice"), R("document:3#viewer@user:bob"))})
			return err
		}},
		{"schema guard", func() error {
			_, err := e.Write(ctx, storage.WriteRequest{SchemaRevision: schemaRev - 1, Mutations: mutations(storage.OpTouch, R("document:4#viewer@user:bob"))})
			return err
		}},
		{"schema check", func() error {
			_, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "x"},
				Check: func(context.Context, storage.Reader) error { return errors.New("refused") }})
			return err
		}},
		{"cancelled", func() error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := e.Write(cctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch, R("document:5#viewer@user:bob"))})
			return err
		}},
	}
	for _, f := range failing {
		if err := f.run(); err == nil {
			t.Fatalf("%s: the write succeeded, want a failure", f.name)
		}
	}
	// Concurrent writers: every committed revision has exactly one entry.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				_, _ = e.Write(ctx, storage.WriteRequest{
					Metadata:  storage.WriteMetadata{Actor: fmt.Sprintf("writer-%d", w)},
					Mutations: mutations(storage.OpTouch, R(fmt.Sprintf("document:w%d-%d#viewer@user:x", w, i))),
				})
			}
		})
	}
	wg.Wait()
	entries := ReadAuditLog(t, e, 0, 0, false)
	h := head(t, e)
	if len(entries) != int(h) {
		t.Fatalf("the log holds %d entries for %d committed revisions: %v", len(entries), h, formatEntries(entries))
	}
	for i, en := range entries {
		if en.Revision != storage.Revision(i+1) {
			t.Fatalf("entry %d has revision %d", i+1, en.Revision)
		}
	}
	res, err := auditlog.Verify(ctx, e)
	if err != nil || res.Broken != nil || res.Entries != int(h) || res.Last != h {
		t.Fatalf("verify = %+v, %v; want %d intact entries", res, err, h)
	}
}

func testAuditChain(t *testing.T, e storage.Engine, tamper Tamper) {
	auditWorkload(t, e)
	entries := ReadAuditLog(t, e, 0, 0, false)
	var zero storage.AuditHash
	if entries[0].PrevHash != zero {
		t.Fatalf("the first entry chains to %x, want zero", entries[0].PrevHash)
	}
	for i := 1; i < len(entries); i++ {
		if entries[i].PrevHash != entries[i-1].Hash {
			t.Fatalf("entry %d does not chain to entry %d", entries[i].Revision, entries[i-1].Revision)
		}
	}
	res, err := auditlog.Verify(ctx, e)
	if err != nil || res.Broken != nil {
		t.Fatalf("verify intact log = %+v, %v", res, err)
	}
	anchor := auditlog.Anchor{Revision: res.Last, Hash: res.Head}
	if res, err := auditlog.Verify(ctx, e, anchor); err != nil || res.Broken != nil {
		t.Fatalf("verify with its own head as anchor = %+v, %v", res, err)
	}
	if tamper == nil {
		t.Fatal("the engine's conformance test must pass storagetest.WithTamper")
	}
	// A changed reason: the entry's own hash no longer matches.
	victim := entries[1].Revision
	tamper(t, e, victim, func(v []byte) []byte {
		return []byte(strings.Replace(string(v), "approved by bob", "approved by eve", 1))
	})
	res, err = auditlog.Verify(ctx, e)
	if err != nil || res.Broken == nil || res.Broken.Revision != victim {
		t.Fatalf("verify after changing entry %d = %+v, %v; want a break at %d", victim, res.Broken, err, victim)
	}
	// Recomputing the changed entry's hash moves the break to its successor.
	tamper(t, e, victim, func(v []byte) []byte {
		en, err := auditlog.Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		out, err := auditlog.Seal(&en)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
	res, err = auditlog.Verify(ctx, e)
	if err != nil || res.Broken == nil || res.Broken.Revision != entries[2].Revision {
		t.Fatalf("verify after resealing entry %d = %+v, %v; want a break at %d", victim, res.Broken, err, entries[2].Revision)
	}
	// Resealing everything after it too passes the chain, but not the anchor.
	prev := storage.AuditHash{}
	for _, en := range entries[1:] {
		if en.Revision == victim {
			prev = en.PrevHash
		}
		tamper(t, e, en.Revision, func(v []byte) []byte {
			d, err := auditlog.Decode(v)
			if err != nil {
				t.Fatal(err)
			}
			d.PrevHash = prev
			out, err := auditlog.Seal(&d)
			if err != nil {
				t.Fatal(err)
			}
			prev = d.Hash
			return out
		})
	}
	if res, err := auditlog.Verify(ctx, e); err != nil || res.Broken != nil {
		t.Fatalf("verify after rewriting the chain = %+v, %v; want it to hold without an anchor", res.Broken, err)
	}
	res, err = auditlog.Verify(ctx, e, anchor)
	if err != nil || res.Broken == nil || res.Broken.Revision != anchor.Revision {
		t.Fatalf("verify a rewritten chain against an anchor = %+v, %v; want a break at %d", res.Broken, err, anchor.Revision)
	}
}

func testAuditTerms(t *testing.T, e storage.Engine) {
	auditWorkload(t, e)
	var big []graph.Relationship
	for i := range 100 {
		big = append(big, R(fmt.Sprintf("folder:big-%d#viewer@user:u-%d", i, i)))
	}
	if _, err := e.Import(ctx, seqOf(big), storage.ImportOptions{BatchSize: 1000, Metadata: storage.WriteMetadata{Actor: "importer"}}); err != nil {
		t.Fatal(err)
	}
	entries := ReadAuditLog(t, e, 0, 0, false)
	revs := func(i ...int) []string {
		out := make([]string, len(i))
		for k, j := range i {
			out[k] = fmt.Sprint(entries[j].Revision)
		}
		return out
	}
	exp := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		term string
		want []string
	}{
		{auditlog.ResourceTerm("document", "1"), revs(1, 2)},
		{auditlog.ResourceTerm("document", "2"), revs()},
		{auditlog.ResourceTypeTerm("folder"), revs(3, 4, 5, 6)},
		// Small import batches are indexed like writes.
		{auditlog.ResourceTerm("folder", "b"), revs(3, 5)},
		// A large one by type, with a filter of its objects.
		{auditlog.ResourceTerm("folder", "big-7"), revs()},
		{auditlog.SubjectTerm("user", "u-7"), revs()},
		{auditlog.ImportResourceTypeTerm("folder"), revs(6)},
		{auditlog.ImportSubjectTypeTerm("user"), revs(6)},
		{auditlog.ImportSubjectTypeTerm("group"), revs()},
		{auditlog.SubjectTerm("user", "carol"), revs(1, 2)},
		{auditlog.SubjectTerm("group", "eng"), revs(3)},
		{auditlog.SubjectTypeTerm("group"), revs(3)},
		{auditlog.SubjectTypeTerm("user"), revs(1, 2, 3, 4, 5, 6)},
		{auditlog.ActorTerm("importer"), revs(3, 4, 6)},
		{auditlog.ActorTerm("nobody"), revs()},
		{auditlog.LabelTerm("ticket", "SEC-42"), revs(1)},
		{auditlog.LabelTerm("approver", "bob"), revs(1)},
		{auditlog.KindTerm(storage.AuditSchema), revs(0)},
		{auditlog.KindTerm(storage.AuditDelete), revs(5)},
		{auditlog.ExpiryDayTerm(exp), revs(1)},
	}
	checkTerms := func(stage string) {
		t.Helper()
		for _, tc := range cases {
			checkTerm(t, e, stage, tc.term, tc.want)
		}
	}
	// An engine may index entries behind the log (AuditIndexer): every
	// query must see every committed entry whether indexed yet or not.
	checkTerms("")
	indexer, deferred := e.(AuditIndexer)
	if deferred {
		if err := indexer.IndexAudit(ctx); err != nil {
			t.Fatal(err)
		}
		checkTerms(" (indexed)")
		// One more entry, on top of the index.
		more := touch(t, e, "document:1#viewer@user:zoe")
		written := ReadAuditLog(t, e, more, more, false)
		if len(written) != 1 {
			t.Fatalf("audit entries of revision %d: %d, want 1", more, len(written))
		}
		newTerms := auditlog.Terms(&written[0])
		for i := range cases {
			if slices.Contains(newTerms, cases[i].term) {
				cases[i].want = append(cases[i].want, fmt.Sprint(more))
			}
		}
		if !slices.Contains(newTerms, auditlog.ResourceTerm("document", "1")) {
			t.Fatalf("terms of %s lack document:1: %q", formatEntry(written[0]), newTerms)
		}
		checkTerms(" (indexed, then written)")
	}
	// Large import entries carry the filter of their objects; others none.
	for i, en := range entries {
		filter, ok, err := e.AuditFilter(ctx, en.Revision)
		if err != nil {
			t.Fatalf("filter of %d: %v", en.Revision, err)
		}
		if ok != (en.Kind == storage.AuditImport && len(en.Changes) == 100) {
			t.Fatalf("entry %d (%s) has a filter: %v", en.Revision, en.Kind, ok)
		}
		if !ok {
			continue
		}
		for _, c := range en.Changes {
			r := c.Relationship
			for _, term := range []string{auditlog.ResourceTerm(r.Resource.Type, r.Resource.ID), auditlog.SubjectTerm(r.Subject.Object.Type, r.Subject.Object.ID)} {
				if !auditlog.FilterMayContain(filter, term) {
					t.Fatalf("the filter of entry %d (entry %d of the log) lacks %s", en.Revision, i, term)
				}
			}
		}
	}
	// Bounds are inclusive.
	var got []string
	for rev, err := range e.AuditTermRevisions(ctx, auditlog.SubjectTypeTerm("user"), entries[2].Revision, entries[4].Revision, true) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprint(rev))
	}
	equalStrings(t, "user subjects in [3rd, 5th], newest first", got, revs(4, 3, 2))
}

// AuditIndexer is an engine that indexes audit entries behind the log;
// IndexAudit returns once every committed entry is indexed.
type AuditIndexer interface {
	IndexAudit(ctx context.Context) error
}

// checkTerm compares the revisions indexed under term, oldest first and
// newest first, with want.
func checkTerm(t *testing.T, e storage.Engine, stage, term string, want []string) {
	t.Helper()
	var got []string
	for rev, err := range e.AuditTermRevisions(ctx, term, 0, 0, false) {
		if err != nil {
			t.Fatalf("term %q: %v", term, err)
		}
		got = append(got, fmt.Sprint(rev))
	}
	equalStrings(t, "revisions of term "+term+stage, got, want)
	got = got[:0]
	for rev, err := range e.AuditTermRevisions(ctx, term, 0, 0, true) {
		if err != nil {
			t.Fatalf("term %q: %v", term, err)
		}
		got = append(got, fmt.Sprint(rev))
	}
	slices.Reverse(got)
	equalStrings(t, "revisions of term "+term+stage+", newest first", got, want)
}

func testAuditRetention(t *testing.T, e storage.Engine) {
	auditWorkload(t, e)
	entries := ReadAuditLog(t, e, 0, 0, false)
	// Garbage collection far in the future drops history, never the log.
	if err := e.CollectGarbage(ctx, farFuture()); err != nil {
		t.Fatal(err)
	}
	equalStrings(t, "audit log after GC", formatEntries(ReadAuditLog(t, e, 0, 0, false)), formatEntries(entries))
	// AuditRevisionAt maps times to revisions.
	for i, en := range entries {
		got, err := e.AuditRevisionAt(ctx, en.CommittedAt)
		if err != nil {
			t.Fatal(err)
		}
		// Entries may share a commit instant: the newest of them is the answer.
		want := en.Revision
		for _, later := range entries[i+1:] {
			if later.CommittedAt.Equal(en.CommittedAt) {
				want = later.Revision
			}
		}
		if got != want {
			t.Fatalf("revision at %v = %d, want %d", en.CommittedAt, got, want)
		}
	}
	if got, err := e.AuditRevisionAt(ctx, entries[0].CommittedAt.Add(-time.Nanosecond)); err != nil || got != 0 {
		t.Fatalf("revision before the first entry = %d, %v; want 0", got, err)
	}
	// Trim everything committed before the fourth entry, with its index
	// terms.
	if indexer, deferred := e.(AuditIndexer); deferred {
		if err := indexer.IndexAudit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cut := entries[3].CommittedAt
	kept := 0
	for _, en := range entries {
		if !en.CommittedAt.Before(cut) {
			kept++
		}
	}
	n, err := e.TrimAudit(ctx, cut)
	if err != nil || n != len(entries)-kept {
		t.Fatalf("trim = %d, %v; want %d removed", n, err, len(entries)-kept)
	}
	left := ReadAuditLog(t, e, 0, 0, false)
	equalStrings(t, "audit log after trim", formatEntries(left), formatEntries(entries[len(entries)-kept:]))
	for rev, err := range e.AuditTermRevisions(ctx, auditlog.ResourceTerm("document", "1"), 0, 0, false) {
		if err != nil {
			t.Fatal(err)
		}
		if rev < left[0].Revision {
			t.Fatalf("term index still lists trimmed revision %d", rev)
		}
	}
	res, err := auditlog.Verify(ctx, e)
	if err != nil || res.Broken != nil || res.First != left[0].Revision {
		t.Fatalf("verify after trim = %+v, %v; want intact from %d", res, err, left[0].Revision)
	}
	// New writes keep chaining to the retained head.
	touch(t, e, "document:9#viewer@user:zed")
	if res, err := auditlog.Verify(ctx, e); err != nil || res.Broken != nil {
		t.Fatalf("verify after a new write = %+v, %v", res, err)
	}
}
