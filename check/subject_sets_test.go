package check

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestSubjectSetAlgebra checks the set operations of set evaluation
// (combine, capped, union, raiseAll) pointwise against member logic on
// random sets over a small universe, wildcard defaults included.
func TestSubjectSetAlgebra(t *testing.T) {
	ids := []subjectID{0, 1, 2, 3, 4, unnumbered}
	rng := rand.New(rand.NewPCG(3, 4))
	random := func() *subjectSet {
		s := &subjectSet{def: member(rng.IntN(3))}
		for _, id := range ids[:5] {
			if rng.IntN(2) == 0 {
				s.set(id, member(rng.IntN(3)))
			}
		}
		return s
	}
	ops := []struct {
		name string
		op   func(x, y member) member
	}{{"or", orMember}, {"and", andMember}, {"minus", minusMember}}
	for range 2000 {
		a, b := random(), random()
		for _, o := range ops {
			got := combine(a, b, o.op)
			for _, id := range ids {
				if want := o.op(a.get(id), b.get(id)); got.get(id) != want {
					t.Fatalf("%s(%v, %v) at %d: got %v, want %v", o.name, a, b, id, got.get(id), want)
				}
			}
		}
		c := member(rng.IntN(3))
		capd := capped(a, c, 0)
		for _, id := range ids {
			if want := min(a.get(id), c); capd.get(id) != want {
				t.Fatalf("capped(%v, %v) at %d: got %v, want %v", a, c, id, capd.get(id), want)
			}
		}
		before := map[subjectID]member{}
		for _, id := range ids {
			before[id] = a.get(id)
		}
		u := cloneResults([]setResult{{set: a}})[0].set.union(b, c, 0, nil)
		for _, id := range ids {
			if want := max(before[id], min(b.get(id), c)); u.get(id) != want {
				t.Fatalf("union(%v, %v, %v) at %d: got %v, want %v", a, b, c, id, u.get(id), want)
			}
			if a.get(id) != before[id] {
				t.Fatalf("union changed its copied input at %d", id)
			}
		}
		w := cloneResults([]setResult{{set: a}})[0].set
		w.raiseAll(c, 0)
		for _, id := range ids {
			if want := max(before[id], c); w.get(id) != want {
				t.Fatalf("raiseAll(%v, %v) at %d: got %v, want %v", a, c, id, w.get(id), want)
			}
		}
	}
}

// TestSubjectSetUntils checks the untils of set evaluation's operations
// (combine with timeCombined, combineTimed, capped, union, raiseAll) pointwise on random
// timed sets over a small universe, wildcard defaults and subjects timed
// apart from the default included: a subject granted (conditionally or
// not) by a union is granted until the latest of its granting sides'
// untils, by an intersection until the earliest of both, by an exclusion
// until the earlier of its base's and the subtracted side's change, and
// through a relationship until the earlier of its own and its
// expiration's.
func TestSubjectSetUntils(t *testing.T) {
	ids := []subjectID{0, 1, 2, 3, 4, unnumbered}
	rng := rand.New(rand.NewPCG(5, 6))
	instant := func() int64 { return int64(rng.IntN(4)) } // 0: never
	random := func() *subjectSet {
		s := &subjectSet{def: member(rng.IntN(3))}
		if s.def.granted() {
			s.defUntil = instant()
		}
		for _, id := range ids[:5] {
			if rng.IntN(2) == 0 {
				s.set(id, member(rng.IntN(3)))
			}
			if s.get(id).granted() && rng.IntN(2) == 0 {
				s.setUntil(id, instant())
			}
		}
		return s
	}
	// check compares got's untils with want's where got grants.
	check := func(what string, got *subjectSet, want func(id subjectID) int64) {
		t.Helper()
		for _, id := range ids {
			if got.get(id).granted() && got.untilOf(id) != want(id) {
				t.Fatalf("%s at %d: until %d, want %d", what, id, got.untilOf(id), want(id))
			}
		}
	}
	ops := []struct {
		name string
		op   func(x, y member) member
	}{{"or", orMember}, {"and", andMember}, {"minus", minusMember}}
	for range 5000 {
		a, b := random(), random()
		noB := instant()
		for _, o := range ops {
			got := combine(a, b, o.op)
			timeCombined(got, a, b, o.op, noB)
			// combineTimed lists and times in one pass where it can: the
			// same memberships and untils as the two steps.
			fused := combineTimed(a, b, o.op, noB)
			for _, id := range ids {
				if fused.get(id) != got.get(id) || fused.get(id).granted() && fused.untilOf(id) != got.untilOf(id) {
					t.Fatalf("%s fused at %d: %d until %d, want %d until %d", o.name, id, fused.get(id), fused.untilOf(id), got.get(id), got.untilOf(id))
				}
			}
			check(o.name, got, func(id subjectID) int64 {
				ga, gb := a.get(id).granted(), b.get(id).granted()
				switch {
				case o.name == "minus":
					return earliest(a.untilOf(id), noB)
				case o.name == "and" || ga && gb:
					if o.name == "and" {
						return earliest(a.untilOf(id), b.untilOf(id))
					}
					return latest(a.untilOf(id), b.untilOf(id))
				case ga:
					return a.untilOf(id)
				}
				return b.untilOf(id)
			})
		}
		c, u := member(1+rng.IntN(2)), instant()
		check("capped", capped(a, c, u), func(id subjectID) int64 { return earliest(a.untilOf(id), u) })
		union := cloneResults([]setResult{{set: a}})[0].set.union(b, c, u, nil)
		check("union", union, func(id subjectID) int64 {
			ua, ub := a.untilOf(id), earliest(b.untilOf(id), u)
			switch ga, gb := a.get(id).granted(), min(b.get(id), c).granted(); {
			case ga && gb:
				return latest(ua, ub)
			case ga:
				return ua
			}
			return ub
		})
		all := cloneResults([]setResult{{set: a}})[0].set
		all.raiseAll(c, u)
		check("raiseAll", all, func(id subjectID) int64 {
			if a.get(id).granted() {
				return latest(a.untilOf(id), u)
			}
			return u
		})
	}
}

// TestSubjectSetUntilsFollowListing checks that a subject keeps its until
// when a set that grants everyone lists it, and that a set looked up
// while it is built, or only once built, indexes every subject it lists.
func TestSubjectSetUntilsFollowListing(t *testing.T) {
	s := &subjectSet{def: memberYes, defUntil: 10}
	s.setUntil(1, 20) // not listed: kept apart
	s.setUntil(2, 30)
	s.set(1, memberMaybe) // listed now
	s.add(3, memberYes)
	if got := s.untilOf(1); got != 20 {
		t.Errorf("until of a subject listed after it was timed: %d, want 20", got)
	}
	if got, want := s.untilOf(2), int64(30); got != want {
		t.Errorf("until of a subject timed and not listed: %d, want %d", got, want)
	}
	if got := s.untilOf(3); got != 10 {
		t.Errorf("until of a subject listed untimed: %d, want the default 10", got)
	}
	if s.get(1) != memberMaybe || s.get(3) != memberYes || s.get(4) != memberYes {
		t.Errorf("memberships %d %d %d, want maybe, yes, yes", s.get(1), s.get(3), s.get(4))
	}
	var timed []subjectID
	s.eachUntil(func(id subjectID, u int64) { timed = append(timed, id) })
	slices.Sort(timed)
	if !slices.Equal(timed, []subjectID{1, 2}) {
		t.Errorf("subjects timed apart from the default: %v, want [1 2]", timed)
	}
	// Built without a lookup, then looked up: the index covers the list.
	built := &subjectSet{}
	for id := range subjectID(100) {
		built.addTimed(id, memberYes, int64(id))
	}
	for id := range subjectID(100) {
		if built.get(id) != memberYes || built.untilOf(id) != int64(id) {
			t.Fatalf("subject %d: %d until %d, want yes until %d", id, built.get(id), built.untilOf(id), id)
		}
	}
	built.add(100, memberMaybe) // indexed now: add keeps the index
	if built.get(100) != memberMaybe || built.get(101) != memberNo {
		t.Errorf("after the index: %d and %d, want maybe and no", built.get(100), built.get(101))
	}
}

// TestOnlyBitsFromTheirLowestNumber checks the bits of a narrowed
// evaluation's subjects, which start at the lowest number's word.
func TestOnlyBitsFromTheirLowestNumber(t *testing.T) {
	only := map[subjectID]bool{130: true, 131: true, 700: true}
	se := &setEval{only: only, onlyList: []subjectID{700, 130, 131}}
	bits := se.onlyBits()
	if bits.base != 128 || len(bits.words) != 9 {
		t.Errorf("bits from %d, %d words; want from 128, 9 words", bits.base, len(bits.words))
	}
	for _, id := range []subjectID{0, 2, 66, 127, 128, 129, 130, 131, 132, 699, 700, 701, 767, 768, unnumbered} {
		if got := bits.has(id); got != only[id] {
			t.Errorf("has(%d) = %v, want %v", id, got, only[id])
		}
	}
	if (&setEval{only: map[subjectID]bool{}, onlyList: []subjectID{}}).onlyBits().has(0) {
		t.Error("no subjects: has(0)")
	}
}

// pruneWorld is a document whose viewers lose access through gates that
// open for them: bob's gate opens in an hour, when his block expires.
func pruneWorld(t *testing.T) Snapshot {
	t.Helper()
	s, err := schema.Compile("prune.zed", `use expiration
definition user {}
definition gate {
  relation grantee: user
  relation blocked: user with expiration
  permission open = grantee - blocked
}
definition doc {
  relation viewer: user
  relation gate: gate
  permission view = viewer - gate->open
}`)
	if err != nil {
		t.Fatal(err)
	}
	in := func(d time.Duration) string { return goldenNow.Add(d).UTC().Format(time.RFC3339) }
	return storeOf(t, s,
		"doc:d#viewer@user:alice", "doc:d#viewer@user:bob", "doc:d#viewer@user:carol",
		"doc:d#gate@gate:g1", "doc:d#gate@gate:g2",
		"gate:g1#grantee@user:alice",
		"gate:g2#grantee@user:bob", "gate:g2#blocked@user:bob[expiration:"+in(time.Hour)+"]",
		"gate:g3#grantee@user:carol", // g3 is no gate of d
	)
}

// TestNarrowedSetsPruned: an evaluation narrowed to a few subjects
// evaluates a monotone relation only on the objects that hold one of them
// (looked up from the subjects), the others empty; a permission that
// subtracts it evaluates on every object, since time can grant there
// (bob's gate opens when his block expires, though he holds no open gate
// now), and the lookup's answer says its ends are not exact.
func TestNarrowedSetsPruned(t *testing.T) {
	snap := pruneWorld(t)
	e := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	var got []string
	found, err := e.lookupSubjects(context.Background(), snap, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: "doc", ID: "d"},
		Permission: "view", SubjectType: "user", Now: goldenNow}, setOptions{proofs: true}, func(r SubjectResult) bool {
		got = append(got, r.Subject.Object.ID)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bob", "carol"}; !slices.Equal(got, want) {
		t.Fatalf("doc:d#view holders %v, want %v", got, want)
	}
	if found == nil || found.exactEnds {
		t.Fatalf("the set answer claims exact ends (%+v), but bob's access ends in an hour, when his block expires", found)
	}
	ev, err := e.newEvaluation(context.Background(), snap, graph.SubjectRef{}, nil, goldenNow)
	if err != nil {
		t.Fatal(err)
	}
	se := newSetEval(ev, "user")
	bob := make([]subjectID, 1)
	if !se.ids.internAll([]string{"bob"}, bob) {
		t.Fatal("cannot number bob")
	}
	se.only = map[subjectID]bool{bob[0]: true}
	res, err := se.batch("gate", "grantee", []string{"g1", "g2", "g3"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} { // bob is a grantee of g2 alone
		if got := res[i].set.empty(); got != want {
			t.Fatalf("gate %d's grantees narrowed to bob: empty %v, want %v", i+1, got, want)
		}
	}
	if _, ok := se.held[[2]string{"gate", "grantee"}]; !ok {
		t.Fatal("the narrowed grantees were evaluated without looking their holders up")
	}
	res, err = se.batch("gate", "open", []string{"g1", "g2", "g3"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res { // nobody holds an open gate now...
		if !res[i].set.empty() {
			t.Fatalf("gate %d narrowed to bob is open now", i+1)
		}
	}
	if !res[1].loose || res[1].expires == 0 { // ...but g2 opens for bob when his block expires
		t.Fatalf("gate 2 narrowed to bob: loose %v, expires %d: want its block's expiry", res[1].loose, res[1].expires)
	}
	if _, ok := se.held[[2]string{"gate", "open"}]; ok {
		t.Fatal("the gates' open, which subtracts, was pruned by its holders now")
	}
}

// TestCachedSetsSeeSubtractedExpiry: a set cached from a lookup whose
// subtracted side was narrowed is not served once a subtracted
// relationship expires: bob views doc:d until his gate opens, in an hour.
func TestCachedSetsSeeSubtractedExpiry(t *testing.T) {
	snap := pruneWorld(t)
	e := New(Config{})
	for _, c := range []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"bob", "carol"}},
		{30 * time.Minute, []string{"bob", "carol"}},
		{2 * time.Hour, []string{"carol"}},
	} {
		var got []string
		err := e.LookupSubjects(context.Background(), snap, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: "doc", ID: "d"},
			Permission: "view", SubjectType: "user", Now: goldenNow.Add(c.at)}, func(r SubjectResult) bool {
			got = append(got, r.Subject.Object.ID)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("doc:d#view at +%v: %v, want %v", c.at, got, c.want)
		}
	}
}

// TestNarrowedSetsPrunedUpward: an evaluation narrowed to more subjects
// than it looks up one by one finds the objects that may hold them all
// at once, upward from the subjects (reachedBy): the teams naming one of
// them (or everyone) and the teams above those through their sub-teams,
// climbed by reverse reads and, with a reachability index, by its
// referrers. It evaluates only those, and every set agrees with the
// evaluation that is not narrowed.
func TestNarrowedSetsPrunedUpward(t *testing.T) {
	src := `definition user {}
definition team {
  relation member: user | user:*
  relation subteam: team
  permission membership = member + subteam->membership
}`
	s, err := schema.Compile("teams.zed", src)
	if err != nil {
		t.Fatal(err)
	}
	// Forty teams in a ternary tree; eighteen users in team t20, one
	// more in t39, and everyone in t30.
	const teams = 40
	parent := func(i int) int { return (i - 1) / 3 }
	var rels, ids, names []string
	for i := range teams {
		ids = append(ids, fmt.Sprintf("t%d", i))
		if i > 0 {
			rels = append(rels, fmt.Sprintf("team:t%d#subteam@team:t%d", parent(i), i))
		}
	}
	for u := range 18 {
		names = append(names, fmt.Sprintf("u%d", u))
		rels = append(rels, fmt.Sprintf("team:t20#member@user:u%d", u))
	}
	rels = append(rels, "team:t39#member@user:u18", "team:t30#member@user:*")
	want := map[string]bool{}
	for _, leaf := range []int{20, 30} {
		for i := leaf; ; i = parent(i) {
			want[fmt.Sprintf("t%d", i)] = true
			if i == 0 {
				break
			}
		}
	}
	t.Run("walked", func(t *testing.T) {
		checkPrunedUpward(t, New(Config{CacheEntries: -1, ReadCacheBytes: -1}), storeOf(t, s, rels...), goldenNow, ids, names, want)
	})
	t.Run("indexed", func(t *testing.T) {
		parsed := make([]graph.Relationship, len(rels))
		for i, r := range rels {
			if parsed[i], err = graph.ParseRelationship(r); err != nil {
				t.Fatal(err)
			}
		}
		w := newReachWorld(t, src, s, nil, parsed)
		rev := w.revs[len(w.revs)-1]
		w.caughtUp(rev)
		reader, err := w.store.eng.SnapshotReader(context.Background(), rev)
		if err != nil {
			t.Fatal(err)
		}
		before := w.idx.Stats().AncestorHits
		// The index answers for instants no earlier than its writes.
		now := time.Now().Add(time.Hour)
		checkPrunedUpward(t, New(Config{Reach: w.idx, CacheEntries: -1, ReadCacheBytes: -1}), Snapshot{Schema: s, Reader: reader}, now, ids, names, want)
		if w.idx.Stats().AncestorHits == before {
			t.Error("the teams above were not climbed in the index")
		}
	})
}

// checkPrunedUpward evaluates team#membership on ids narrowed to users
// names, at instant now, and checks that exactly the teams in want were evaluated and
// that every set agrees with the evaluation that is not narrowed.
func checkPrunedUpward(t *testing.T, e *Engine, snap Snapshot, now time.Time, ids, names []string, want map[string]bool) {
	t.Helper()
	ev, err := e.newEvaluation(context.Background(), snap, graph.SubjectRef{}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	whole := newSetEval(ev, "user")
	all, err := whole.batch("team", "membership", ids, 1)
	if err != nil {
		t.Fatal(err)
	}
	se := newSetEval(ev, "user")
	nums := make([]subjectID, len(names))
	if !se.ids.internAll(names, nums) {
		t.Fatal("cannot number the users")
	}
	if len(nums) < e.narrow.reachedMin {
		t.Fatalf("%d users: fewer than reachedMin (%d), the test would look them up one by one", len(nums), e.narrow.reachedMin)
	}
	se.only = map[subjectID]bool{}
	for _, n := range nums {
		se.only[n] = true
	}
	res, err := se.batch("team", "membership", ids, 1)
	if err != nil {
		t.Fatal(err)
	}
	held, ok := se.held[[2]string{"team", "membership"}]
	if !ok || held == nil {
		t.Fatal("the narrowed memberships were evaluated without finding their holders")
	}
	if !maps.Equal(held, want) {
		t.Fatalf("teams found upward from the users: %v, want %v", slices.Sorted(maps.Keys(held)), slices.Sorted(maps.Keys(want)))
	}
	for i, id := range ids {
		if res[i].set.empty() == want[id] {
			t.Errorf("team %s's membership narrowed to the users: empty %v, want %v", id, res[i].set.empty(), !want[id])
		}
		for k, n := range nums {
			if got, w := res[i].set.get(n), all[i].set.get(n); got != w {
				t.Errorf("team %s's membership narrowed: %s is %v, want %v as without narrowing", id, names[k], got, w)
			}
		}
	}
}
