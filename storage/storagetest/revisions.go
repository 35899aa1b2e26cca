package storagetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// farFuture is the "now" the suite collects garbage at, so that every
// committed revision but the head falls out of any sane GC window.
func farFuture() time.Time { return time.Now().Add(10 * 365 * 24 * time.Hour) }

func testGarbageCollection(t *testing.T, e storage.Engine) {
	a, b, c := "document:1#viewer@user:alice", "document:2#viewer@user:bob", "document:3#viewer@user:carol"
	r1 := touch(t, e, a)
	r2, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpDelete, Relationship: R(a)},
		{Op: storage.OpTouch, Relationship: R(b)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}, Metadata: storage.WriteMetadata{}}); err != nil {
		t.Fatal(err)
	}
	r4 := touch(t, e, c)

	// Collecting now keeps everything: the window has not passed.
	if err := e.CollectGarbage(ctx, time.Now()); err != nil {
		t.Fatalf("collect garbage now: %v", err)
	}
	equalStrings(t, "r1 after collecting now", all(t, e, r1), []string{a})

	if err := e.CollectGarbage(ctx, farFuture()); err != nil {
		t.Fatalf("collect garbage: %v", err)
	}
	for _, rev := range []storage.Revision{0, r1, r2} {
		_, err := e.SnapshotReader(ctx, rev)
		wantErrIs(t, fmt.Sprintf("reader at %d after GC", rev), err, storage.ErrRevisionTooOld)
	}
	for _, err := range e.Watch(ctx, r1) {
		wantErrIs(t, "watch from below the window", err, storage.ErrRevisionTooOld)
		break
	}
	equalStrings(t, "head after GC", all(t, e, r4), []string{b, c})
	s, err := reader(t, e, r4).ReadSchema(ctx)
	if err != nil || s.Text != "definition user {}" {
		t.Fatalf("schema after GC = %+v, %v", s, err)
	}
	// Writes and reads carry on; collecting again is harmless.
	r5 := touch(t, e, a)
	if err := e.CollectGarbage(ctx, farFuture()); err != nil {
		t.Fatal(err)
	}
	equalStrings(t, "after a later write", all(t, e, r5), []string{a, b, c})
	if h := head(t, e); h != r5 {
		t.Fatalf("head after GC = %d, want %d", h, r5)
	}
}

func testRevisionUnknown(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	h := head(t, e)
	_, err := e.SnapshotReader(ctx, h+1000)
	wantErrIs(t, "reader above head", err, storage.ErrRevisionUnknown)
	for _, err := range e.Watch(ctx, h+1000) {
		wantErrIs(t, "watch above head", err, storage.ErrRevisionUnknown)
		break
	}
}

// watchUntil collects changes from Watch(after) up to and including the
// first one stop accepts.
func watchUntil(t *testing.T, e storage.Engine, after storage.Revision, stop func(storage.Change) bool) []storage.Change {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out []storage.Change
	for ch, err := range e.Watch(c, after) {
		if err != nil {
			t.Fatalf("watch after %d changes: %v", len(out), err)
		}
		out = append(out, ch)
		if stop(ch) {
			return out
		}
	}
	t.Fatalf("watch ended after %d changes without reaching the last one", len(out))
	return nil
}

func atRevision(rev storage.Revision) func(storage.Change) bool {
	return func(ch storage.Change) bool { return ch.Revision >= rev }
}

func testWatchConcurrent(t *testing.T, e storage.Engine) {
	start := touch(t, e, "document:0#viewer@user:start")
	const writers = 8
	perWriter := 15
	if raceEnabled || testing.Short() {
		perWriter = 6
	}
	type written struct {
		rel  string
		meta storage.WriteMetadata
	}
	var mu sync.Mutex // guards byRev
	byRev := map[storage.Revision]written{}
	// After every writer is done, one last write marks the end for the
	// watcher: it cannot tell otherwise that no more changes are coming.
	sentinel := "document:end#viewer@user:end"
	go func() {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					spec := fmt.Sprintf("document:w%d_%d#viewer@user:u%d", w, i, i)
					meta := storage.WriteMetadata{Actor: fmt.Sprintf("writer-%d", w), Reason: fmt.Sprintf("write %d", i)}
					rev, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch, R(spec)), Metadata: meta})
					if err != nil {
						t.Errorf("write: %v", err)
						return
					}
					mu.Lock()
					byRev[rev] = written{spec, meta}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if _, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpTouch, R(sentinel))}); err != nil {
			t.Errorf("write: %v", err)
		}
	}()
	changes := watchUntil(t, e, start, func(ch storage.Change) bool {
		return len(ch.Relationships) == 1 && Format(ch.Relationships[0].Relationship) == sentinel
	})
	changes = changes[:len(changes)-1]
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != len(byRev) {
		t.Fatalf("watch saw %d revisions, writers committed %d", len(changes), len(byRev))
	}
	for i, ch := range changes {
		if i > 0 && ch.Revision <= changes[i-1].Revision {
			t.Fatalf("watch revision %d after %d", ch.Revision, changes[i-1].Revision)
		}
		w, ok := byRev[ch.Revision]
		if !ok {
			t.Fatalf("watch yielded revision %d that no writer committed", ch.Revision)
		}
		if !reflect.DeepEqual(ch.Metadata, w.meta) || len(ch.Relationships) != 1 ||
			ch.Relationships[0].Op != storage.OpTouch || Format(ch.Relationships[0].Relationship) != w.rel {
			t.Fatalf("revision %d: change %+v, want %s by %+v", ch.Revision, ch, w.rel, w.meta)
		}
		if ch.CommittedAt.IsZero() {
			t.Fatalf("revision %d has no commit time", ch.Revision)
		}
	}
}

func changeLines(ch storage.Change) []string {
	var out []string
	for _, rc := range ch.Relationships {
		out = append(out, rc.Op.String()+" "+Format(rc.Relationship))
	}
	slices.Sort(out)
	if ch.SchemaChanged {
		out = append(out, "SCHEMA")
	}
	return out
}

func testWatchChanges(t *testing.T, e storage.Engine) {
	exp := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	cav := R("document:1#viewer@user:bob")
	cav.Caveat = &graph.Caveat{Name: "cav", Context: map[string]any{"x": "y"}}
	cav.Expiration = &exp
	var revs []storage.Revision
	revs = append(revs, write(t, e, storage.OpCreate, R("document:1#viewer@user:alice"), cav))
	revs = append(revs, write(t, e, storage.OpDelete, R("document:1#viewer@user:alice"), R("document:9#viewer@user:nobody")))
	res, err := e.DeleteRelationships(ctx, storage.Filter{ResourceType: "document"}, 0, storage.WriteMetadata{Actor: "gc"})
	if err != nil {
		t.Fatal(err)
	}
	revs = append(revs, res.Revision)
	r, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}, Metadata: storage.WriteMetadata{Actor: "schema"}})
	if err != nil {
		t.Fatal(err)
	}
	revs = append(revs, r)
	want := [][]string{
		{"TOUCH document:1#viewer@user:alice", "TOUCH " + Format(cav)},
		{"DELETE document:1#viewer@user:alice"},
		{"DELETE " + Format(cav)},
		{"SCHEMA"},
	}
	changes := watchUntil(t, e, 0, atRevision(revs[len(revs)-1]))
	if len(changes) != len(want) {
		t.Fatalf("watch from 0 saw %d revisions, want %d", len(changes), len(want))
	}
	for i, ch := range changes {
		if ch.Revision != revs[i] {
			t.Fatalf("change %d at revision %d, want %d", i, ch.Revision, revs[i])
		}
		equalStrings(t, fmt.Sprintf("change at %d", ch.Revision), changeLines(ch), want[i])
	}
	// Watching from the middle replays only what follows.
	if tail := watchUntil(t, e, revs[1], atRevision(revs[len(revs)-1])); len(tail) != 2 || tail[0].Revision != revs[2] {
		t.Fatalf("watch from %d: %d changes starting at %d", revs[1], len(tail), tail[0].Revision)
	}
}

func testWatchCancel(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	c, cancel := context.WithCancel(ctx)
	finished := make(chan int, 1)
	caughtUp := make(chan struct{})
	go func() {
		n := 0
		for _, err := range e.Watch(c, 0) {
			if err != nil {
				break
			}
			n++
			if n == 1 {
				close(caughtUp)
			}
		}
		finished <- n
	}()
	// Cancel only once the watcher has delivered the committed revision:
	// a fixed sleep is too short for an engine that polls a database on a
	// loaded machine.
	select {
	case <-caughtUp:
	case n := <-finished:
		t.Fatalf("watch ended after %d changes before it was cancelled", n)
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not deliver the committed revision")
	}
	time.Sleep(10 * time.Millisecond) // let the watcher go back to waiting
	cancel()
	select {
	case n := <-finished:
		if n != 1 {
			t.Fatalf("watch yielded %d changes, want 1", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("watch did not end when its context was cancelled")
	}
}

func testWriteMetadata(t *testing.T, e storage.Engine) {
	metas := []storage.WriteMetadata{
		{Actor: "user:alice", Reason: "grant access for ticket SEC-1"},
		{},
		{Actor: "ünïcode actor", Reason: "multi\nline reason"},
		{Actor: "ci", Labels: []storage.Label{{Key: "ticket", Value: "SEC-42"}, {Key: "approver", Value: "bob"}, {Key: "approver", Value: "amy"}}},
	}
	var revs []storage.Revision
	for i, m := range metas {
		rev, err := e.Write(ctx, storage.WriteRequest{
			Mutations: mutations(storage.OpTouch, R(fmt.Sprintf("document:%d#viewer@user:alice", i))),
			Metadata:  m,
		})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	imp, err := e.Import(ctx, seqOf(rels("folder:1#viewer@user:a")), storage.ImportOptions{BatchSize: 10, Metadata: storage.WriteMetadata{Actor: "importer", Reason: "bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	metas = append(metas, storage.WriteMetadata{Actor: "importer", Reason: "bulk"})
	revs = append(revs, imp.Revisions...)
	changes := watchUntil(t, e, 0, atRevision(revs[len(revs)-1]))
	for i, ch := range changes {
		want := metas[i]
		want.Labels = slices.SortedFunc(slices.Values(want.Labels), func(a, b storage.Label) int {
			return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
		})
		if ch.Revision != revs[i] || !reflect.DeepEqual(ch.Metadata, want) {
			t.Fatalf("change %d: revision %d metadata %+v, want %d %+v", i, ch.Revision, ch.Metadata, revs[i], metas[i])
		}
	}
}

func testSchemaVersions(t *testing.T, e storage.Engine) {
	v1 := storage.StoredSchema{Text: "definition user {}", Compiled: []byte{0, 1, 2, 255}}
	v2 := storage.StoredSchema{Text: "definition user {}\ndefinition document { relation viewer: user }", Compiled: []byte("v2")}
	r1, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: v1, Metadata: storage.WriteMetadata{Actor: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	r2 := touch(t, e, "document:1#viewer@user:alice")
	r3, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: v2, Metadata: storage.WriteMetadata{Actor: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   storage.Revision
		want storage.StoredSchema
	}{
		{0, storage.StoredSchema{}},
		{r1, storage.StoredSchema{Text: v1.Text, Compiled: v1.Compiled, Revision: r1}},
		{r2, storage.StoredSchema{Text: v1.Text, Compiled: v1.Compiled, Revision: r1}},
		{r3, storage.StoredSchema{Text: v2.Text, Compiled: v2.Compiled, Revision: r3}},
	} {
		got, err := reader(t, e, c.at).ReadSchema(ctx)
		if err != nil {
			t.Fatalf("read schema at %d: %v", c.at, err)
		}
		if got.Text != c.want.Text || string(got.Compiled) != string(c.want.Compiled) || got.Revision != c.want.Revision {
			t.Fatalf("schema at %d = %+v, want %+v", c.at, got, c.want)
		}
	}
	equalStrings(t, "relationships survive schema writes", all(t, e, r3), []string{"document:1#viewer@user:alice"})
}

func seqOf(rs []graph.Relationship) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func testImportBatches(t *testing.T, e storage.Engine) {
	touch(t, e, "document:0#viewer@user:u0") // imported again below: TOUCH, not an error
	before := head(t, e)
	var specs []string
	for i := range 25 {
		specs = append(specs, fmt.Sprintf("document:%d#viewer@user:u%d", i, i))
	}
	res, err := e.Import(ctx, seqOf(rels(specs...)), storage.ImportOptions{BatchSize: 10, Metadata: storage.WriteMetadata{Actor: "import"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 25 || len(res.Revisions) != 3 {
		t.Fatalf("import = %+v, want 25 imported in 3 revisions", res)
	}
	prev := before
	for _, r := range res.Revisions {
		if r <= prev {
			t.Fatalf("import revisions %v not ascending after %d", res.Revisions, before)
		}
		prev = r
	}
	if h := head(t, e); h != res.Revisions[2] {
		t.Fatalf("head %d, want the last batch %d", h, res.Revisions[2])
	}
	equalStrings(t, "first batch", all(t, e, res.Revisions[0]), sorted(specs[:10]...))
	equalStrings(t, "second batch", all(t, e, res.Revisions[1]), sorted(specs[:20]...))
	equalStrings(t, "all batches", all(t, e, res.Revisions[2]), sorted(specs...))

	// An iterator error stops the import after the batches it completed.
	failing := func(yield func(graph.Relationship, error) bool) {
		for i := range 7 {
			if !yield(R(fmt.Sprintf("folder:%d#viewer@user:u", i)), nil) {
				return
			}
		}
		yield(graph.Relationship{}, errors.New("source broke"))
	}
	res, err = e.Import(ctx, failing, storage.ImportOptions{BatchSize: 5, Metadata: storage.WriteMetadata{}})
	if err == nil || res.Imported != 5 || len(res.Revisions) != 1 {
		t.Fatalf("import from a failing source = %+v, %v; want 5 imported and an error", res, err)
	}
}

// testImportDuplicates imports a relationship twice in one batch and once
// over an existing one: TOUCH semantics, the last occurrence wins.
func testImportDuplicates(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	first, second := R("document:2#viewer@user:bob"), R("document:2#viewer@user:bob")
	first.Caveat = &graph.Caveat{Name: "first_caveat"}
	second.Caveat = &graph.Caveat{Name: "second_caveat", Context: map[string]any{"k": "v"}}
	replaced := R("document:1#viewer@user:alice")
	replaced.Caveat = &graph.Caveat{Name: "replaced"}
	res, err := e.Import(ctx, seqOf([]graph.Relationship{first, replaced, second}), storage.ImportOptions{BatchSize: 10, Metadata: storage.WriteMetadata{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 3 || len(res.Revisions) != 1 {
		t.Fatalf("import = %+v, want 3 imported in one revision", res)
	}
	equalStrings(t, "after importing duplicates", all(t, e, res.Revisions[0]), []string{Format(replaced), Format(second)})
}

func testImportInvalid(t *testing.T, e storage.Engine) {
	rs := rels("document:1#viewer@user:a", "document:2#viewer@user:b", "document:3#viewer@user:c", "document:4#viewer@user:d")
	rs[2].Resource.ID = "bad id"
	res, err := e.Import(ctx, seqOf(rs), storage.ImportOptions{BatchSize: 2, Metadata: storage.WriteMetadata{}})
	wantErrIs(t, "import with an invalid relationship", err, storage.ErrInvalidArgument)
	if res.Imported != 2 || len(res.Revisions) != 1 {
		t.Fatalf("import = %+v, want the first batch only", res)
	}
	equalStrings(t, "after a failed import", allAtHead(t, e), []string{"document:1#viewer@user:a", "document:2#viewer@user:b"})
	_, err = e.Import(ctx, seqOf(rs[:1]), storage.ImportOptions{BatchSize: -1, Metadata: storage.WriteMetadata{}})
	wantErrIs(t, "import with a negative batch size", err, storage.ErrInvalidArgument)
}

func testImportLarge(t *testing.T, e storage.Engine) {
	n := 100_000
	if raceEnabled || testing.Short() {
		n = 10_000
	}
	gen := func(yield func(graph.Relationship, error) bool) {
		for i := range n {
			r := graph.Relationship{
				Resource: graph.ObjectRef{Type: "document", ID: fmt.Sprintf("doc%07d", i)},
				Relation: "viewer",
				Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", i%1000)}},
			}
			if !yield(r, nil) {
				return
			}
		}
	}
	res, err := e.Import(ctx, gen, storage.ImportOptions{BatchSize: n, Metadata: storage.WriteMetadata{Actor: "bulk"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != n || len(res.Revisions) != 1 {
		t.Fatalf("import = %d in %d revisions, want %d in one", res.Imported, len(res.Revisions), n)
	}
	rd := reader(t, e, res.Revisions[0])
	count := 0
	var last graph.Relationship
	for r, err := range rd.QueryRelationships(ctx, storage.Filter{ResourceType: "document"}, storage.QueryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if count > 0 && compareForward(last, r) >= 0 {
			t.Fatalf("out of order: %s then %s", Format(last), Format(r))
		}
		last = r
		count++
	}
	if count != n {
		t.Fatalf("%d relationships after import, want %d", count, n)
	}
	back := collect(t, rd.ReverseQueryRelationships(ctx, storage.ReverseFilter{
		Subject: storage.SubjectFilter{Type: "user", IDs: []string{"u7"}}}, storage.QueryOptions{}))
	if len(back) != n/1000 {
		t.Fatalf("reverse query found %d, want %d", len(back), n/1000)
	}
}

// testWatchAfterAuditTrim checks that Watch and garbage collection do not
// depend on the audit log: an engine may record a revision in its audit
// entry alone, and retention may trim entries whose revisions are still
// inside the GC window. Watch must replay them exactly as before the
// trim, metadata included, and garbage collection must still find what
// they changed.
func testWatchAfterAuditTrim(t *testing.T, e storage.Engine) {
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := R("document:2#viewer@user:erin")
	expired.Expiration = &past
	cav := R("document:1#viewer@user:bob")
	cav.Caveat = &graph.Caveat{Name: "cav", Context: map[string]any{"n": 1.5, "s": "y"}}
	meta := storage.WriteMetadata{Actor: "alice", Reason: "SEC-42", Labels: []storage.Label{{Key: "approver", Value: "bob"}, {Key: "ticket", Value: "SEC-42"}}}
	var revs []storage.Revision
	w := func(op storage.Op, rs ...graph.Relationship) {
		t.Helper()
		rev, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(op, rs...), Metadata: meta})
		if err != nil {
			t.Fatalf("write %v %v: %v", op, formatAll(rs), err)
		}
		revs = append(revs, rev)
	}
	w(storage.OpCreate, R("document:1#viewer@user:alice"), cav, expired)
	w(storage.OpDelete, expired) // it had expired: no change a reader sees
	w(storage.OpTouch, R("document:3#viewer@user:carol"))
	w(storage.OpDelete, R("document:1#viewer@user:alice"))
	rev, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: "definition user {}"}, Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	revs = append(revs, rev)
	summary := func(chs []storage.Change) []string {
		var out []string
		for _, ch := range chs {
			out = append(out, fmt.Sprintf("@%d %s %+v %v", ch.Revision, ch.CommittedAt.Format(time.RFC3339Nano), ch.Metadata, changeLines(ch)))
		}
		return out
	}
	last := atRevision(revs[len(revs)-1])
	before := summary(watchUntil(t, e, 0, last))
	if len(before) != len(revs) {
		t.Fatalf("watch saw %d revisions, want %d: %q", len(before), len(revs), before)
	}
	if _, err := e.TrimAudit(ctx, farFuture()); err != nil {
		t.Fatal(err)
	}
	equalStrings(t, "watch after trimming the audit log", summary(watchUntil(t, e, 0, last)), before)
	// Garbage collection past every revision finds the trimmed revisions'
	// changes and keeps exactly what is live.
	if err := e.CollectGarbage(ctx, farFuture()); err != nil {
		t.Fatal(err)
	}
	h := touch(t, e, "document:4#viewer@user:dave")
	equalStrings(t, "relationships after GC", all(t, e, h), []string{Format(cav), "document:3#viewer@user:carol", "document:4#viewer@user:dave"})
	for _, err := range e.Watch(ctx, revs[0]) {
		wantErrIs(t, "watch from a collected revision", err, storage.ErrRevisionTooOld)
		break
	}
}
