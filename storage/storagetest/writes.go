package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

func testEmptyStore(t *testing.T, e storage.Engine) {
	if h := head(t, e); h != 0 {
		t.Fatalf("head of an empty store = %d, want 0", h)
	}
	equalStrings(t, "relationships at 0", all(t, e, 0), nil)
	s, err := reader(t, e, 0).ReadSchema(ctx)
	if err != nil || s.Text != "" {
		t.Fatalf("schema of an empty store = %+v, %v; want empty", s, err)
	}
}

func testSnapshotIsolation(t *testing.T, e storage.Engine) {
	a, b := "document:1#viewer@user:alice", "document:2#viewer@user:bob"
	r1 := touch(t, e, a)
	r2, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpDelete, Relationship: R(a)},
		{Op: storage.OpCreate, Relationship: R(b)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	old := reader(t, e, r1) // held open across later writes
	ca := R(a)
	ca.Caveat = &graph.Caveat{Name: "on_weekdays"}
	r3 := write(t, e, storage.OpTouch, ca)
	if !(r1 < r2 && r2 < r3) {
		t.Fatalf("revisions not increasing: %d %d %d", r1, r2, r3)
	}
	equalStrings(t, "at 0", all(t, e, 0), nil)
	equalStrings(t, "at r1", all(t, e, r1), []string{a})
	equalStrings(t, "at r2", all(t, e, r2), []string{b})
	equalStrings(t, "at r3", all(t, e, r3), []string{Format(ca), b})
	equalStrings(t, "reader opened at r1, read after r3",
		formatAll(collect(t, old.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}))), []string{a})
	if h := head(t, e); h != r3 {
		t.Fatalf("head = %d, want %d", h, r3)
	}
}

func testConcurrentWriters(t *testing.T, e storage.Engine) {
	const writers = 8
	perWriter := 20
	if raceEnabled || testing.Short() {
		perWriter = 8
	}
	revs := make([][]storage.Revision, writers)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				rel := R(fmt.Sprintf("document:w%d#viewer@user:u%d", w, i))
				rev, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpCreate, rel)})
				if err != nil {
					errs <- err
					return
				}
				revs[w] = append(revs[w], rev)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent write: %v", err)
	}
	seen := map[storage.Revision]bool{}
	var highest storage.Revision
	for w, rs := range revs {
		for i, r := range rs {
			if seen[r] {
				t.Fatalf("revision %d returned to two writes", r)
			}
			seen[r] = true
			if i > 0 && r <= rs[i-1] {
				t.Fatalf("writer %d: revision %d after %d", w, r, rs[i-1])
			}
			highest = max(highest, r)
		}
	}
	if h := head(t, e); h < highest {
		t.Fatalf("head %d below a returned revision %d", h, highest)
	}
	if n := len(allAtHead(t, e)); n != writers*perWriter {
		t.Fatalf("%d relationships at head, want %d", n, writers*perWriter)
	}
	// Every revision shows exactly the writes committed at or before it.
	for w, rs := range revs {
		r := rs[len(rs)/2]
		got := all(t, e, r)
		want := 0
		for _, rs2 := range revs {
			for _, r2 := range rs2 {
				if r2 <= r {
					want++
				}
			}
		}
		if len(got) != want {
			t.Fatalf("writer %d: %d relationships at revision %d, want %d", w, len(got), r, want)
		}
	}
}

func testPreconditions(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	expired := R("document:3#viewer@user:dave")
	expired.Expiration = ptr(time.Now().Add(-time.Hour))
	write(t, e, storage.OpTouch, expired)
	match := storage.Filter{ResourceType: "document", ResourceIDs: []string{"1"}, Relation: "viewer"}
	noMatch := storage.Filter{ResourceType: "document", ResourceIDs: []string{"2"}}
	expiredOnly := storage.Filter{ResourceType: "document", ResourceIDs: []string{"3"}}
	bySubject := storage.Filter{ResourceType: "document", Subject: &storage.SubjectFilter{Type: "user", IDs: []string{"alice"}}}
	byPrefix := storage.Filter{ResourceType: "document", ResourceIDPrefix: "1", Relation: "viewer"}
	expiredByPrefix := storage.Filter{ResourceType: "document", ResourceIDPrefix: "3"}
	cases := []struct {
		name  string
		pre   []storage.Precondition
		apply bool
	}{
		{"must match, matches", []storage.Precondition{{MustMatch: true, Filter: match}}, true},
		{"must match, subject filter", []storage.Precondition{{MustMatch: true, Filter: bySubject}}, true},
		{"must match, id prefix", []storage.Precondition{{MustMatch: true, Filter: byPrefix}}, true},
		{"must not match, id prefix", []storage.Precondition{{MustMatch: false, Filter: byPrefix}}, false},
		{"must match, id prefix of only expired", []storage.Precondition{{MustMatch: true, Filter: expiredByPrefix}}, false},
		{"must match, no match", []storage.Precondition{{MustMatch: true, Filter: noMatch}}, false},
		{"must match, only expired", []storage.Precondition{{MustMatch: true, Filter: expiredOnly}}, false},
		{"must not match, no match", []storage.Precondition{{MustMatch: false, Filter: noMatch}}, true},
		{"must not match, only expired", []storage.Precondition{{MustMatch: false, Filter: expiredOnly}}, true},
		{"must not match, matches", []storage.Precondition{{MustMatch: false, Filter: match}}, false},
		{"all must hold", []storage.Precondition{{MustMatch: true, Filter: match}, {MustMatch: true, Filter: noMatch}}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := head(t, e)
			beforeRels := all(t, e, before)
			rel := R(fmt.Sprintf("folder:f%d#viewer@user:bob", i))
			rev, err := e.Write(ctx, storage.WriteRequest{Preconditions: c.pre, Mutations: mutations(storage.OpTouch, rel)})
			if c.apply {
				if err != nil {
					t.Fatalf("write: %v", err)
				}
				if rev <= before {
					t.Fatalf("revision %d not after %d", rev, before)
				}
				if got := all(t, e, rev); len(got) != len(beforeRels)+1 {
					t.Fatalf("after write: %q", got)
				}
				return
			}
			wantErrIs(t, "write", err, storage.ErrPreconditionFailed)
			if h := head(t, e); h != before {
				t.Fatalf("failed precondition moved head %d -> %d", before, h)
			}
			equalStrings(t, "after failed precondition", allAtHead(t, e), beforeRels)
		})
	}
}

func testCreateConflict(t *testing.T, e storage.Engine) {
	a := "document:1#viewer@user:alice"
	touch(t, e, a)
	before := head(t, e)
	_, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpCreate,
		R("document:2#viewer@user:bob"), R(a))})
	var exists *storage.AlreadyExistsError
	if !errors.As(err, &exists) {
		t.Fatalf("create of a live relationship: error = %v, want *AlreadyExistsError", err)
	}
	if Format(exists.Relationship) != a {
		t.Fatalf("AlreadyExistsError names %s, want %s", Format(exists.Relationship), a)
	}
	if h := head(t, e); h != before {
		t.Fatalf("failed create moved head %d -> %d", before, h)
	}
	equalStrings(t, "after failed create", allAtHead(t, e), []string{a})

	// A deleted or expired relationship can be created again.
	write(t, e, storage.OpDelete, R(a))
	write(t, e, storage.OpCreate, R(a))
	ex := R("document:3#viewer@user:carol")
	ex.Expiration = ptr(time.Now().Add(-time.Minute))
	write(t, e, storage.OpTouch, ex)
	write(t, e, storage.OpCreate, R("document:3#viewer@user:carol"))
	equalStrings(t, "recreated", allAtHead(t, e), []string{a, "document:3#viewer@user:carol"})

	// Large creates (a bulk import's) follow the same rules: all or
	// nothing when one exists, an expired one is replaced.
	bulk := func(prefix string, extra ...graph.Relationship) []graph.Relationship {
		var rs []graph.Relationship
		for i := range 200 {
			rs = append(rs, R(fmt.Sprintf("folder:%s%03d#viewer@user:u%d", prefix, i, i%7)))
		}
		return append(rs, extra...)
	}
	write(t, e, storage.OpCreate, bulk("new")...)
	before = head(t, e)
	_, err = e.Write(ctx, storage.WriteRequest{Mutations: mutations(storage.OpCreate, bulk("more", R(a))...)})
	if !errors.As(err, &exists) || Format(exists.Relationship) != a {
		t.Fatalf("bulk create meeting a live relationship: error = %v, want *AlreadyExistsError naming %s", err, a)
	}
	if h := head(t, e); h != before {
		t.Fatalf("failed bulk create moved head %d -> %d", before, h)
	}
	ex = R("document:4#viewer@user:dan")
	ex.Expiration = ptr(time.Now().Add(-time.Minute))
	write(t, e, storage.OpTouch, ex)
	write(t, e, storage.OpCreate, bulk("again", R("document:4#viewer@user:dan"))...)
	if got := len(allAtHead(t, e)); got != 2+200+200+1 {
		t.Fatalf("after the bulk creates: %d relationships, want 403", got)
	}
}

func testDuplicateMutation(t *testing.T, e storage.Engine) {
	a := R("document:1#viewer@user:alice")
	_, err := e.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{
		{Op: storage.OpTouch, Relationship: a},
		{Op: storage.OpDelete, Relationship: a},
	}})
	wantErrIs(t, "two mutations of one relationship", err, storage.ErrInvalidArgument)
	if h := head(t, e); h != 0 {
		t.Fatalf("rejected write moved head to %d", h)
	}
}

func testTouchReplaces(t *testing.T, e storage.Engine) {
	exp := time.Date(2100, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	v1 := R("document:1#viewer@user:alice")
	v1.Caveat = &graph.Caveat{Name: "ip_allowlist", Context: map[string]any{"cidr": "10.0.0.0/8"}}
	v2 := R("document:1#viewer@user:alice")
	v2.Expiration = &exp
	v3 := R("document:1#viewer@user:alice")
	v3.Caveat = &graph.Caveat{Name: "on_weekdays"}
	var revs []storage.Revision
	for _, v := range []graph.Relationship{v1, v2, v3} {
		revs = append(revs, write(t, e, storage.OpTouch, v))
	}
	for i, v := range []graph.Relationship{v1, v2, v3} {
		got := collect(t, reader(t, e, revs[i]).QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}))
		if len(got) != 1 {
			t.Fatalf("at %d: %q, want one relationship", revs[i], formatAll(got))
		}
		g := got[0]
		if !sameCaveat(g.Caveat, v.Caveat) {
			t.Fatalf("at %d: caveat %+v, want %+v", revs[i], g.Caveat, v.Caveat)
		}
		if (g.Expiration == nil) != (v.Expiration == nil) || g.Expiration != nil && !g.Expiration.Equal(*v.Expiration) {
			t.Fatalf("at %d: expiration %v, want %v", revs[i], g.Expiration, v.Expiration)
		}
	}
}

func testDeleteAbsent(t *testing.T, e storage.Engine) {
	touch(t, e, "document:1#viewer@user:alice")
	before := head(t, e)
	rev := write(t, e, storage.OpDelete, R("document:1#viewer@user:bob"), R("folder:x#viewer@user:alice"))
	if rev <= before {
		t.Fatalf("delete revision %d not after %d", rev, before)
	}
	equalStrings(t, "after deleting absent", allAtHead(t, e), []string{"document:1#viewer@user:alice"})
	write(t, e, storage.OpDelete, R("document:1#viewer@user:alice"))
	write(t, e, storage.OpDelete, R("document:1#viewer@user:alice"))
	equalStrings(t, "after deleting twice", allAtHead(t, e), nil)
}

func testDeleteRelationshipsLimit(t *testing.T, e storage.Engine) {
	touch(t, e,
		"document:1#viewer@user:a", "document:1#viewer@user:b", "document:2#viewer@user:c",
		"document:3#viewer@user:d", "document:4#viewer@user:e", "document:4#editor@user:a",
		"folder:1#viewer@user:a")
	full := head(t, e)
	f := storage.Filter{ResourceType: "document", Relation: "viewer"}
	meta := storage.WriteMetadata{Actor: "admin", Reason: "cleanup"}

	res, err := e.DeleteRelationships(ctx, f, 2, meta)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 2 || !res.More || res.Revision <= full {
		t.Fatalf("first delete = %+v, want 2 deleted, more, a new revision", res)
	}
	equalStrings(t, "after deleting the first two", all(t, e, res.Revision), sorted(
		"document:2#viewer@user:c", "document:3#viewer@user:d", "document:4#viewer@user:e",
		"document:4#editor@user:a", "folder:1#viewer@user:a"))
	if n := len(all(t, e, full)); n != 7 {
		t.Fatalf("%d relationships at the revision before the delete, want 7", n)
	}

	res, err = e.DeleteRelationships(ctx, f, 3, meta)
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 3 || res.More {
		t.Fatalf("delete of exactly the rest = %+v, want 3 deleted, no more", res)
	}
	res, err = e.DeleteRelationships(ctx, f, 0, meta)
	if err != nil || res.Deleted != 0 || res.More {
		t.Fatalf("delete with nothing left = %+v, %v", res, err)
	}
	res, err = e.DeleteRelationships(ctx, storage.Filter{Subject: &storage.SubjectFilter{Type: "user", IDs: []string{"a"}}}, 0, meta)
	if err != nil || res.Deleted != 2 || res.More {
		t.Fatalf("delete by subject = %+v, %v; want 2 deleted", res, err)
	}
	equalStrings(t, "at the end", allAtHead(t, e), nil)

	touch(t, e, "document:x1#viewer@user:a", "document:x10#viewer@user:a", "document:x2#viewer@user:a", "document:y1#viewer@user:a")
	res, err = e.DeleteRelationships(ctx, storage.Filter{ResourceType: "document", ResourceIDPrefix: "x1"}, 0, meta)
	if err != nil || res.Deleted != 2 || res.More {
		t.Fatalf("delete by id prefix = %+v, %v; want 2 deleted", res, err)
	}
	equalStrings(t, "after deleting by id prefix", allAtHead(t, e), sorted("document:x2#viewer@user:a", "document:y1#viewer@user:a"))
	_, err = e.DeleteRelationships(ctx, storage.Filter{ResourceType: "document"}, 0, meta)
	if err != nil {
		t.Fatal(err)
	}

	before := head(t, e)
	_, err = e.DeleteRelationships(ctx, storage.Filter{}, 0, meta)
	wantErrIs(t, "delete with an empty filter", err, storage.ErrInvalidArgument)
	_, err = e.DeleteRelationships(ctx, f, -1, meta)
	wantErrIs(t, "delete with a negative limit", err, storage.ErrInvalidArgument)
	if h := head(t, e); h != before {
		t.Fatalf("rejected delete moved head %d -> %d", before, h)
	}
}
