package expand

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
	"github.com/pembadb/pemba/storage/readcache"
)

// tierTypes are people, nested teams and tiers clearing them.
const tierTypes = `definition user {}
definition team {
	relation member: user | team#member
}
definition tier {
	relation cleared: user | team#member
	permission clearance = cleared
}
`

// tiers: every document reaches its tier's clearance, shared by all the
// documents of the tier.
const tiers = tierTypes + `definition doc {
	relation tier: tier
	relation viewer: user
	permission view = viewer + tier->clearance
}`

// store is a writable in-memory store for tests that read several
// revisions.
type store struct {
	t   *testing.T
	s   *schema.Schema
	eng *pebble.Engine
}

func newStore(t *testing.T, src string) *store {
	t.Helper()
	s, err := schema.Compile("t.zed", src)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &store{t: t, s: s, eng: eng}
}

// write applies op to rels and returns a reader at the new revision.
func (st *store) write(op storage.Op, rels ...string) storage.Reader {
	st.t.Helper()
	var muts []storage.Mutation
	for _, r := range rels {
		muts = append(muts, storage.Mutation{Op: op, Relationship: graph.MustParseRelationship(r)})
	}
	ctx := context.Background()
	rev, err := st.eng.Write(ctx, storage.WriteRequest{Mutations: muts})
	if err != nil {
		st.t.Fatal(err)
	}
	rd, err := st.eng.SnapshotReader(ctx, rev)
	if err != nil {
		st.t.Fatal(err)
	}
	return rd
}

// members returns n memberships of team:big, each with suffix.
func members(n int, suffix string) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("team:big#member@user:u%d%s", i, suffix))
	}
	return out
}

// countingReader counts the queries it passes to a store's reader.
type countingReader struct {
	storage.Reader
	queries int
}

func (c *countingReader) QueryRelationships(ctx context.Context, f storage.Filter, opts storage.QueryOptions) iter.Seq2[graph.Relationship, error] {
	c.queries++
	return c.Reader.QueryRelationships(ctx, f, opts)
}

// reads expands doc:id#view and returns the queries it read.
func reads(t *testing.T, s *schema.Schema, rd storage.Reader, id string, opts Options) (int, error) {
	t.Helper()
	c := &countingReader{Reader: rd}
	_, err := Expand(context.Background(), s, c, graph.ObjectRef{Type: "doc", ID: id}, "view", opts)
	return c.queries, err
}

// TestOversizeRefusesAtKnownSubtree: once a count crosses the limit in a
// tier's clearance, another document of the tier is refused as soon as
// its tier is read, reading neither its viewers, which the walk counts
// first, nor the clearance, nor the team; a tree within the limit and a
// shallow tree are unaffected.
func TestOversizeRefusesAtKnownSubtree(t *testing.T) {
	st := newStore(t, tiers)
	rd := st.write(storage.OpTouch, append(members(30, ""),
		"tier:secret#cleared@team:big#member", "tier:secret#cleared@user:x", "tier:open#cleared@user:y",
		"doc:a#tier@tier:secret", "doc:a#viewer@user:ann", "doc:b#tier@tier:secret", "doc:small#tier@tier:open")...)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	memo := NewOversize(0)
	opts := Options{MaxNodes: 20, Now: now, Oversize: memo}
	without := Options{MaxNodes: 20, Now: now}

	if _, err := reads(t, st.s, rd, "a", opts); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("doc:a: %v, want ErrTooLarge", err)
	}
	if memo.sizes.Len() != 1 {
		t.Fatalf("sizes remembered after one refusal: %d, want 1 (tier:secret#clearance)", memo.sizes.Len())
	}
	with, errWith := reads(t, st.s, rd, "b", opts)
	walked, errWithout := reads(t, st.s, rd, "b", without)
	if !errors.Is(errWith, ErrTooLarge) || !errors.Is(errWithout, ErrTooLarge) || errWith.Error() != errWithout.Error() {
		t.Fatalf("doc:b: %v with the memory, %v without; want the same ErrTooLarge", errWith, errWithout)
	}
	// doc:b#tier; the walk reads doc:b#viewer, doc:b#tier,
	// tier:secret#cleared and team:big#member.
	if with != 1 || walked != 4 {
		t.Errorf("doc:b read %d queries with the memory and %d without, want 1 and 4", with, walked)
	}

	for _, o := range []Options{{MaxNodes: 20, Now: now}, {MaxNodes: 20, Now: now, Shallow: true}} {
		for _, id := range []string{"small", "b"} {
			if id == "b" && !o.Shallow {
				continue
			}
			want, err := Expand(context.Background(), st.s, rd, graph.ObjectRef{Type: "doc", ID: id}, "view", o)
			if err != nil {
				t.Fatalf("doc:%s shallow=%v: %v", id, o.Shallow, err)
			}
			o.Oversize = memo
			got, err := Expand(context.Background(), st.s, rd, graph.ObjectRef{Type: "doc", ID: id}, "view", o)
			if err != nil || got.String() != want.String() {
				t.Errorf("doc:%s shallow=%v with the memory: %v\n%s\nwant\n%s", id, o.Shallow, err, got, want)
			}
		}
	}
}

// TestOversizeLooksAheadOnlyThroughSmallTuplesets: the look-ahead
// follows the permissions an expression names and arrows whose
// tuplesets are small; a document with more tiers than it reads ahead
// is refused where the walk reaches the known clearance, as before.
func TestOversizeLooksAheadOnlyThroughSmallTuplesets(t *testing.T) {
	const schemaText = tierTypes + `definition doc {
	relation tier: tier
	relation viewer: user
	permission cleared = tier->clearance
	permission view = viewer + cleared
}`
	st := newStore(t, schemaText)
	rels := append(members(70, ""), "tier:secret#cleared@team:big#member",
		"doc:a#tier@tier:secret", "doc:near#tier@tier:secret", "doc:near#viewer@user:ann")
	for i := range lookAheadRows {
		rels = append(rels, fmt.Sprintf("doc:far#tier@tier:a%02d", i))
	}
	rels = append(rels, "doc:far#tier@tier:secret", "doc:far#viewer@user:ann")
	rd := st.write(storage.OpTouch, rels...)
	opts := Options{MaxNodes: 60, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Oversize: NewOversize(0)}
	if _, err := reads(t, st.s, rd, "a", opts); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("doc:a: %v, want ErrTooLarge", err)
	}
	for _, tc := range []struct {
		id    string
		reads int
	}{
		// Through the permission cleared to the one tier.
		{"near", 1},
		// Seventeen tiers: the look-ahead reads them and gives up; the
		// walk reads the viewers, the tiers again and the sixteen
		// small clearances before it.
		{"far", 1 + 2 + lookAheadRows},
	} {
		n, err := reads(t, st.s, rd, tc.id, opts)
		if !errors.Is(err, ErrTooLarge) || n != tc.reads {
			t.Errorf("doc:%s: %v after %d queries, want ErrTooLarge after %d", tc.id, err, n, tc.reads)
		}
	}
}

// TestOversizeForgetsOldSchema: learning under another schema forgets
// the sizes of the old one, which the memory then no longer holds alive.
func TestOversizeForgetsOldSchema(t *testing.T) {
	st := newStore(t, tiers)
	rd := st.write(storage.OpTouch, append(members(30, ""),
		"tier:secret#cleared@team:big#member", "doc:a#tier@tier:secret", "doc:a#viewer@user:ann")...)
	memo := NewOversize(0)
	opts := Options{MaxNodes: 20, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Oversize: memo}
	if _, err := reads(t, st.s, rd, "a", opts); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("doc:a: %v, want ErrTooLarge", err)
	}
	memo.sizes.Add(objectRelation{graph.ObjectRef{Type: "tier", ID: "other"}, "clearance"}, sizeFact{s: st.s})
	again, err := schema.Compile("t.zed", tiers)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = Expand(context.Background(), again, rd, graph.ObjectRef{Type: "doc", ID: "a"}, "view", opts)
	for _, k := range memo.sizes.Keys() {
		if f, _ := memo.sizes.Peek(k); f.s != again {
			t.Errorf("a size of the old schema kept: %v", k)
		}
	}
	if memo.sizes.Len() != 1 {
		t.Errorf("%d sizes after learning under a new schema, want 1", memo.sizes.Len())
	}
}

// changesFunc is a Changes answering with f.
type changesFunc func(from, to storage.Revision, typ, rel string) bool

func (f changesFunc) Unchanged(from, to storage.Revision, typ, rel string) bool {
	return f(from, to, typ, rel)
}

// TestOversizeHoldsWhileItsReadsHold: a size serves another revision
// only when Changes vouches for every relation its count read, and
// instants only until the first relationship it counted expires.
func TestOversizeHoldsWhileItsReadsHold(t *testing.T) {
	t.Run("revisions", func(t *testing.T) {
		st := newStore(t, tiers)
		rd1 := st.write(storage.OpTouch, append(members(40, ""),
			"tier:secret#cleared@team:big#member", "doc:a#tier@tier:secret", "doc:b#tier@tier:secret")...)
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		memo := NewOversize(0)
		if _, err := reads(t, st.s, rd1, "a", Options{MaxNodes: 30, Now: now, Oversize: memo}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("doc:a at the first revision: %v, want ErrTooLarge", err)
		}
		// The team shrinks: doc:b's tree now fits.
		rd2 := st.write(storage.OpDelete, members(30, "")...)
		teamChanged := changesFunc(func(_, _ storage.Revision, typ, rel string) bool { return typ != "team" })
		lying := changesFunc(func(_, _ storage.Revision, _, _ string) bool { return true })
		for _, tc := range []struct {
			name     string
			changes  Changes
			tooLarge bool
		}{
			{"no change tracking: the size is of another revision", nil, false},
			{"the team's members changed", teamChanged, false},
			// A tracker vouching for the team serves the old size: the
			// memory consults Changes, and only Changes.
			{"a tracker vouching for every relation", lying, true},
		} {
			_, err := reads(t, st.s, rd2, "b", Options{MaxNodes: 30, Now: now, Oversize: memo, Changes: tc.changes})
			if errors.Is(err, ErrTooLarge) != tc.tooLarge || (err != nil && !errors.Is(err, ErrTooLarge)) {
				t.Errorf("%s: %v, too large want %v", tc.name, err, tc.tooLarge)
			}
		}
	})
	// The size holds until the first relationship it counted expires,
	// whether its read was whole or cut short by the limit.
	for name, rels := range map[string][]string{
		"cut read": append(append(members(30, "[expiration:2026-01-01T12:00:00Z]"), members(5, "x")...),
			"tier:secret#cleared@team:big#member"),
		"whole read": {"team:a#member@user:a1[expiration:2026-01-01T12:00:00Z]", "team:a#member@user:a2[expiration:2026-01-01T12:00:00Z]",
			"team:a#member@user:a3[expiration:2026-01-01T12:00:00Z]", "team:a#member@user:a4[expiration:2026-01-01T12:00:00Z]",
			"team:a#member@user:a5[expiration:2026-01-01T12:00:00Z]", "team:a#member@user:a6[expiration:2026-01-01T12:00:00Z]",
			"team:b#member@user:b1", "team:b#member@user:b2", "team:b#member@user:b3", "team:b#member@user:b4",
			"team:b#member@user:b5", "team:b#member@user:b6", "team:b#member@user:b7",
			"tier:secret#cleared@team:a#member", "tier:secret#cleared@team:b#member"},
	} {
		t.Run("expirations/"+name, func(t *testing.T) {
			st := newStore(t, tiers)
			rd := st.write(storage.OpTouch, append(rels, "doc:a#tier@tier:secret", "doc:b#tier@tier:secret")...)
			morning := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
			afternoon := morning.Add(4 * time.Hour)
			for name, r := range map[string]storage.Reader{"store": rd, "read cache": readcache.New(readcache.Config{}).Reader(rd)} {
				memo := NewOversize(0)
				if _, err := Expand(context.Background(), st.s, r, graph.ObjectRef{Type: "doc", ID: "a"}, "view", Options{MaxNodes: 18, Now: morning, Oversize: memo}); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%s: doc:a in the morning: %v, want ErrTooLarge", name, err)
				}
				if n, err := reads(t, st.s, rd, "b", Options{MaxNodes: 18, Now: morning.Add(time.Hour), Oversize: memo}); !errors.Is(err, ErrTooLarge) || n != 1 {
					t.Errorf("%s: doc:b before noon: %v after %d queries, want ErrTooLarge after 1", name, err, n)
				}
				if _, err := Expand(context.Background(), st.s, r, graph.ObjectRef{Type: "doc", ID: "b"}, "view", Options{MaxNodes: 18, Now: afternoon, Oversize: memo}); err != nil {
					t.Errorf("%s: doc:b in the afternoon, the grants expired: %v", name, err)
				}
			}
		})
	}
}

// randomTeams writes random nested teams and documents granted to them,
// and returns a reader of them and the number of documents (doc:d0, …).
func randomTeams(t *testing.T, r *rand.Rand) (*store, storage.Reader, int) {
	st := newStore(t, randomTeamsSchema)
	var rels []string
	teams, docs := 4+r.IntN(8), 12
	for tm := range teams {
		for _, u := range r.Perm(40)[:r.IntN(12)] {
			exp := ""
			if r.IntN(4) == 0 {
				exp = fmt.Sprintf("[expiration:2026-01-01T%02d:00:00Z]", r.IntN(24))
			}
			rels = append(rels, fmt.Sprintf("team:t%d#member@user:u%d%s", tm, u, exp))
		}
		if r.IntN(2) == 0 {
			rels = append(rels, fmt.Sprintf("team:t%d#member@team:t%d#member", tm, r.IntN(teams)))
		}
		if tm > 0 {
			rels = append(rels, fmt.Sprintf("team:t%d#parent@team:t%d", tm, r.IntN(tm)))
		}
	}
	for d := range docs {
		rels = append(rels, fmt.Sprintf("doc:d%d#team@team:t%d", d, r.IntN(teams)),
			fmt.Sprintf("doc:d%d#viewer@team:t%d#member", d, r.IntN(teams)))
	}
	return st, st.write(storage.OpTouch, rels...), docs
}

const randomTeamsSchema = `definition user {}
definition team {
	relation member: user | team#member
	relation parent: team
	permission all = member + parent->all
}
definition doc {
	relation team: team
	relation viewer: user | team#member
	permission view = viewer + team->all
}`

// TestOversizeAgreesWithTheWalk: on random nested teams and documents,
// expanding every document in turn with one memory gives the trees and
// errors each expansion gives without it.
func TestOversizeAgreesWithTheWalk(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	shortened := 0
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		st, rd, docs := randomTeams(t, r)
		memo := NewOversize(0)
		limit := 5 + r.IntN(40)
		for range 3 * docs {
			d := graph.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%d", r.IntN(docs))}
			at := now.Add(time.Duration(r.IntN(24)) * time.Hour)
			walk, remembering := &countingReader{Reader: rd}, &countingReader{Reader: rd}
			want, wantErr := Expand(context.Background(), st.s, walk, d, "view", Options{MaxNodes: limit, Now: at})
			got, err := Expand(context.Background(), st.s, remembering, d, "view", Options{MaxNodes: limit, Now: at, Oversize: memo})
			if fmt.Sprint(wantErr) != fmt.Sprint(err) || (err == nil && got.String() != want.String()) {
				t.Fatalf("seed %d, %s at %s, limit %d: with the memory %v\n%s\nwithout %v\n%s", seed, d, at, limit, err, got, wantErr, want)
			}
			if err != nil && remembering.queries < walk.queries {
				shortened++
			}
		}
	}
	if shortened < 20 {
		t.Errorf("the memory shortened %d refusals, want at least 20: the worlds do not exercise it", shortened)
	}
}

// TestOversizeConcurrent: expansions sharing one memory from several
// goroutines give the answers of expansions without it.
func TestOversizeConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 7))
	st, rd, docs := randomTeams(t, r)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := make([]string, docs)
	for d := range docs {
		n, err := Expand(context.Background(), st.s, rd, graph.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%d", d)}, "view", Options{MaxNodes: 12, Now: now})
		want[d] = fmt.Sprint(n, err)
	}
	memo := NewOversize(0)
	var g errgroup.Group
	for w := range 4 {
		g.Go(func() error {
			for i := range 50 {
				d := (w + i) % docs
				n, err := Expand(context.Background(), st.s, rd, graph.ObjectRef{Type: "doc", ID: fmt.Sprintf("d%d", d)}, "view", Options{MaxNodes: 12, Now: now, Oversize: memo})
				if got := fmt.Sprint(n, err); got != want[d] {
					return fmt.Errorf("doc:d%d: %s, want %s", d, got, want[d])
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}
