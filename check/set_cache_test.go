package check

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestSetCache runs every LookupSubjects of random worlds of the
// reference model, each asked several times at instants on both sides of
// the worlds' expirations and in varying order, on one engine whose set
// cache fills as it goes, and compares each answer with an engine
// without caches.
func TestSetCache(t *testing.T) {
	rng := referenceRNG(t, 4)
	ctx := context.Background()
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	cached := 0
	forEachWorld(t, rng, goldenNow, worldOptions{spread: true}, func(w *testWorld) bool {
		s, ids, snap, src, worlds := w.s, w.ids, w.snap, w.src, w.n
		var reqs []LookupSubjectsRequest
		for _, typ := range s.DefinitionOrder {
			for _, id := range ids[typ] {
				for _, perm := range s.Definitions[typ].Order {
					for _, st := range s.DefinitionOrder {
						reqs = append(reqs, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, SubjectType: st})
					}
				}
			}
		}
		e := New(Config{})
		nows := []time.Duration{0, 90 * time.Minute, 0, 150 * time.Minute, 30 * time.Minute, 4 * time.Hour}
		for _, d := range nows {
			rng.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
			for _, req := range reqs {
				req.Now = goldenNow.Add(d)
				got, err := lookupAll(ctx, e, snap, req)
				if err != nil {
					t.Fatalf("world %d: %s#%s@%s at +%v: %v\n%s", worlds, req.Resource, req.Permission, req.SubjectType, d, err, src)
				}
				want, err := lookupAll(ctx, cold, snap, req)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("world %d: %s#%s@%s at +%v: cached engine %v, without caches %v\n%s\nrelationships:\n%s", worlds, req.Resource, req.Permission, req.SubjectType, d, got, want, src, relsString(w.rels))
				}
			}
		}
		e.sets.mu.Lock()
		if e.sets.sets != nil {
			cached += e.sets.sets.Len()
		}
		e.sets.mu.Unlock()
		return true
	})
	if cached == 0 {
		t.Error("no set was cached")
	}
}

// lookupAll returns LookupSubjects' answers as sorted strings.
func lookupAll(ctx context.Context, e *Engine, snap Snapshot, req LookupSubjectsRequest) ([]string, error) {
	var out []string
	err := e.LookupSubjects(ctx, snap, req, func(r SubjectResult) bool {
		out = append(out, fmt.Sprintf("%s %v %v %v", r.Subject, r.Permissionship, r.Missing, r.Excluded))
		return true
	})
	slices.Sort(out)
	return out, err
}

// TestSetCacheConcurrent runs the lookups of a random world from several
// goroutines on one engine, which share its set cache, and compares them
// with an engine without caches (run it with -race).
func TestSetCacheConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 5))
	ctx := context.Background()
	cold := New(Config{CacheEntries: -1, ReadCacheBytes: -1})
	forEachWorld(t, rng, goldenNow, worldOptions{count: 4}, func(w *testWorld) bool {
		s, ids, snap, src, worlds := w.s, w.ids, w.snap, w.src, w.n
		var err error
		var reqs []LookupSubjectsRequest
		for _, typ := range s.DefinitionOrder {
			for _, id := range ids[typ] {
				for _, perm := range s.Definitions[typ].Order {
					reqs = append(reqs, LookupSubjectsRequest{Resource: graph.ObjectRef{Type: typ, ID: id}, Permission: perm, SubjectType: "user", Now: goldenNow})
				}
			}
		}
		want := make([][]string, len(reqs))
		for i, req := range reqs {
			if want[i], err = lookupAll(ctx, cold, snap, req); err != nil {
				t.Fatal(err)
			}
		}
		e := New(Config{})
		errs := make(chan error, 4)
		for g := range 4 {
			go func() {
				for k := range 3 * len(reqs) {
					i := (k*(g+1) + g) % len(reqs)
					got, err := lookupAll(ctx, e, snap, reqs[i])
					if err == nil && !slices.Equal(got, want[i]) {
						err = fmt.Errorf("%s#%s: got %v, want %v", reqs[i].Resource, reqs[i].Permission, got, want[i])
					}
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("world %d: %v\n%s", worlds, err, src)
			}
		}
		return true
	})
}

// TestSetCacheBytes: the set cache keeps a set only within a quarter of
// its budget (Config.SetCacheBytes), evicts to stay within it, and keeps
// nothing with a negative budget.
func TestSetCacheBytes(t *testing.T) {
	set := func(n int) setResult {
		s := &subjectSet{}
		for i := range n {
			s.keys = append(s.keys, subjectID(i))
		}
		return setResult{set: s}
	}
	key := func(id string) setKey {
		return setKey{rev: 1, subjectType: "user", n: node{typ: "group", id: id, rel: "member"}}
	}
	size := func(n int) int64 { return setBytes(set(n)) }
	for _, tc := range []struct {
		name   string
		budget int64
		sets   []int     // members of the sets put, in turn
		how    []putKind // how each was computed (nil: all on the way)
		kept   []bool
	}{
		{"default", New(Config{}).sets.maxBytes, []int{10, 1000}, nil, []bool{true, true}},
		{"over a quarter", 4 * size(10), []int{10, 11}, nil, []bool{true, false}},
		{"evicts the oldest", 4 * size(10), []int{10, 10, 10, 10, 10}, nil, []bool{false, true, true, true, true}},
		{"negative", -1, []int{0, 10}, nil, []bool{false, false}},
		{"spare while there is room", 4 * size(10), []int{10, 10, 10, 10, 10},
			[]putKind{putSpare, putSpare, putSpare, putSpare, putSpare}, []bool{true, true, true, true, false}},
		{"spare never evicts", 4 * size(10), []int{10, 10, 10, 10, 10},
			[]putKind{putWanted, putOnTheWay, putOnTheWay, putSpare, putSpare}, []bool{true, true, true, true, false}},
		{"spare is evicted", 4 * size(10), []int{10, 10, 10, 10, 10},
			[]putKind{putSpare, putSpare, putSpare, putSpare, putWanted}, []bool{false, true, true, true, true}},
	} {
		c := setCache{maxBytes: tc.budget}
		ids := newSubjectIDs(maxSubjectIDs)
		for i, n := range tc.sets {
			how := putOnTheWay
			if tc.how != nil {
				how = tc.how[i]
			}
			c.put(key(fmt.Sprint(i)), set(n), 0, 1, ids, nil, how)
		}
		for i := range tc.sets {
			if _, ok := c.get(key(fmt.Sprint(i)), 0, 1, newSubjectIDs(maxSubjectIDs)); ok {
				t.Errorf("%s: set %d served with another table of subject IDs", tc.name, i)
			}
			if _, ok := c.get(key(fmt.Sprint(i)), 0, 1, ids); ok != tc.kept[i] {
				t.Errorf("%s: set %d (%d members) kept %v, want %v", tc.name, i, tc.sets[i], ok, tc.kept[i])
			}
		}
		if c.sets != nil && c.sets.Size() > max(tc.budget, 0) {
			t.Errorf("%s: %d bytes cached, over the budget of %d", tc.name, c.sets.Size(), tc.budget)
		}
	}
}

// TestSetCacheKeepsSetsUsedAgain: a set a lookup used again stays cached
// while a stream of sets used once, together larger than the budget,
// passes through: one request's sets do not evict the ones every lookup
// shares.
func TestSetCacheKeepsSetsUsedAgain(t *testing.T) {
	set := func(n int) setResult {
		s := emptySet()
		for i := range n {
			s.set(subjectID(i), memberYes)
		}
		return setResult{set: s}
	}
	key := func(id string) setKey {
		return setKey{rev: 1, subjectType: "user", n: node{typ: "tier", id: id, rel: "clearance"}}
	}
	ids := newSubjectIDs(maxSubjectIDs)
	c := setCache{maxBytes: 40 * setBytes(set(10))}
	c.put(key("shared"), set(10), 0, 1, ids, nil, putOnTheWay)
	c.put(key("unused"), set(10), 0, 1, ids, nil, putOnTheWay)
	if _, ok := c.get(key("shared"), 0, 1, ids); !ok {
		t.Fatal("shared set not cached")
	}
	for i := range 100 {
		c.put(key(fmt.Sprint("once-", i)), set(10), 0, 1, ids, nil, putOnTheWay)
	}
	if _, ok := c.get(key("shared"), 0, 1, ids); !ok {
		t.Error("the set used again was evicted by sets used once")
	}
	if _, ok := c.get(key("unused"), 0, 1, ids); ok {
		t.Error("a set never used again outlived 100 newer ones in a cache of 40")
	}
}

// TestSetLookupsShareTheCache: looking a cached set up, and a memoized
// relation's dependencies, takes the cache's lock shared, so concurrent
// lookups never wait for each other; a lookup while another holds it
// still finds the set, and only its mark of use is skipped (the set is
// then evicted as if it had not been used again). Storing a set found
// on the way and counting a want give up instead of waiting.
func TestSetLookupsShareTheCache(t *testing.T) {
	set := emptySet()
	set.set(subjectID(1), memberYes)
	key := func(id string) setKey {
		return setKey{rev: 1, subjectType: "user", n: node{typ: "tier", id: id, rel: "clearance"}}
	}
	ids := newSubjectIDs(maxSubjectIDs)
	s, err := schema.Compile("tiers.zed", "definition user {}\ndefinition tier {\n relation cleared: user\n permission clearance = cleared\n}")
	if err != nil {
		t.Fatal(err)
	}
	c := setCache{maxBytes: 40 * setBytes(setResult{set: set})}
	c.put(key("shared"), setResult{set: set}, 0, 1, ids, nil, putOnTheWay)
	want := c.dependencies(s, "tier", "clearance")
	for range setCacheDemand - 1 { // the next want counted starts a computation
		c.want(key("narrowed"))
	}

	c.mu.RLock() // a concurrent lookup
	done := make(chan string)
	go func() {
		_, ok := c.get(key("shared"), 0, 1, ids)
		deps := c.dependencies(s, "tier", "clearance")
		switch {
		case !ok || !slices.Equal(deps, want):
			done <- "a lookup beside another did not find the cached set or its dependencies"
		case c.put(key("on-the-way"), setResult{set: set}, 0, 1, ids, nil, putOnTheWay):
			done <- "a set found on the way was stored while the cache was busy"
		case c.want(key("narrowed")):
			done <- "a want counted while the cache was busy started a computation"
		default:
			done <- ""
		}
	}()
	select {
	case msg := <-done:
		if msg != "" {
			t.Error(msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lookup waited for another")
	}
	c.mu.RUnlock()
	if !c.put(key("on-the-way"), setResult{set: set}, 0, 1, ids, nil, putOnTheWay) {
		t.Error("a set found on the way was not stored in a free cache")
	}
}

// awaitCached waits up to 10 s for a background computation to cache
// the set get looks up (what names it), and returns it.
func awaitCached(t *testing.T, what string, get func() (setResult, bool)) setResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, ok := get(); ok {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not computed whole in the background", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSetsComputedInBackgroundKeepWhatTheyFound: a background
// computation of a set whole also caches the sets it computed whole on
// its way (a tier's teams), while the cache has room for them; a full
// cache keeps what it holds instead.
func TestSetsComputedInBackgroundKeepWhatTheyFound(t *testing.T) {
	s, err := schema.Compile("tiers.zed", `definition user {}
definition team {
  relation member: user
  permission membership = member
}
definition tier {
  relation cleared_team: team
  permission clearance = cleared_team->membership
}`)
	if err != nil {
		t.Fatal(err)
	}
	snap := storeOf(t, s, "tier:t#cleared_team@team:a", "tier:t#cleared_team@team:b",
		"team:a#member@user:alice", "team:b#member@user:bob")
	// Four sets of one or two subjects fill the budget, and one may take
	// a quarter of it.
	two := emptySet()
	two.set(0, memberYes)
	two.set(1, memberYes)
	budget := 4 * setBytes(setResult{set: two})
	for _, full := range []bool{false, true} {
		t.Run(fmt.Sprint("full=", full), func(t *testing.T) {
			e := New(Config{SetCacheBytes: budget})
			newSE := func() *setEval {
				ev, err := e.newEvaluation(context.Background(), snap, graph.SubjectRef{}, nil, goldenNow)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.release(ev) })
				se := newSetEval(ev, "user")
				se.cache = &e.sets
				return se
			}
			if full {
				ids := newSE().ids
				for i := range 4 {
					k := setKey{subjectType: "user", anyCtx: true, n: node{"tier", fmt.Sprint("other-", i), "clearance"}}
					if !e.sets.put(k, setResult{set: two}, goldenNow.UnixNano(), snap.Reader.Revision(), ids, nil, putWanted) {
						t.Fatal("filler not cached")
					}
				}
			}
			newSE().wholeInBackground("tier", "clearance", []string{"t"}, 1)
			r := awaitCached(t, "tier t's clearance", func() (setResult, bool) { return newSE().cached("tier", "t", "clearance") })
			if len(r.set.keys) != 2 {
				t.Fatalf("tier t's clearance: %d subjects, want alice and bob", len(r.set.keys))
			}
			for _, team := range []string{"a", "b"} {
				if _, ok := newSE().cached("team", team, "membership"); ok == full {
					t.Errorf("team %s's membership cached: %v, want %v", team, ok, !full)
				}
			}
		})
	}
}

// TestSetsComputedWholeInBackground: once narrowed evaluations have
// wanted a node setCacheDemand times, it is computed whole in the
// background and cached, and later evaluations find it there; while the
// background slots are taken, the demand waits for the next evaluation
// that wants the node instead of being lost.
func TestSetsComputedWholeInBackground(t *testing.T) {
	snap := pruneWorld(t)
	e := New(Config{})
	narrowed := func(who string) *setEval {
		ev, err := e.newEvaluation(context.Background(), snap, graph.SubjectRef{}, nil, goldenNow)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.release(ev) })
		se := newSetEval(ev, "user")
		id := make([]subjectID, 1)
		if !se.ids.internAll([]string{who}, id) {
			t.Fatalf("cannot number %s", who)
		}
		se.only, se.cache = map[subjectID]bool{id[0]: true}, &e.sets
		return se
	}
	ask := func(who string) setResult {
		t.Helper()
		res, err := narrowed(who).batch("gate", "grantee", []string{"g1"}, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	key := narrowed("alice").cacheKey("gate", "g1", "grantee", false)

	// Every slot taken: the third demand is put back, not computed.
	for i := range setWholeWorkers {
		if !e.startWhole("other", fmt.Sprint(i)) {
			t.Fatal("cannot take a free slot")
		}
	}
	for range setCacheDemand {
		if r := ask("alice"); r.set.empty() {
			t.Fatal("alice is a grantee of g1, narrowed to her")
		}
	}
	e.sets.mu.Lock()
	d, _ := e.sets.demand.Peek(key)
	e.sets.mu.Unlock()
	if n := d.n; n != setCacheDemand-1 {
		t.Fatalf("demand with the slots taken: %d, want %d", n, setCacheDemand-1)
	}
	if st := e.Stats(); st.SetsDeferred != 1 || st.SetsComputed != 0 {
		t.Fatalf("with the slots taken: %d sets deferred, %d computed; want 1, 0", st.SetsDeferred, st.SetsComputed)
	}
	for i := range setWholeWorkers {
		e.endWhole("other", fmt.Sprint(i))
	}

	// The slots free: the next demand computes g1's grantees whole.
	if r := ask("bob"); !r.set.empty() {
		t.Fatal("bob is no grantee of g1")
	}
	r := awaitCached(t, "g1's grantees", func() (setResult, bool) { return narrowed("carol").cached("gate", "g1", "grantee") })
	if len(r.set.keys) != 1 {
		t.Fatalf("g1's grantees computed whole: %d subjects, want alice alone", len(r.set.keys))
	}
	if r := ask("alice"); r.set.empty() {
		t.Fatal("the cached whole set, narrowed to alice, lost her")
	}
	st := e.Stats()
	if st.SetsComputed != 1 || st.SetsTooLarge != 0 || st.SetsFailed != 0 {
		t.Errorf("sets computed / too large / failed = %d / %d / %d, want 1 / 0 / 0", st.SetsComputed, st.SetsTooLarge, st.SetsFailed)
	}
	if st.SetCacheHits == 0 || st.SetCacheMisses == 0 || st.SetCacheEntries == 0 || st.SetCacheBytes <= 0 {
		t.Errorf("set cache stats %+v: want hits, misses and a set held", st)
	}
}

// TestTooLargeRetried: a node marked too large is left narrowed until
// its retry time, then counted again from the start.
func TestTooLargeRetried(t *testing.T) {
	k := setKey{rev: 1, subjectType: "user", n: node{typ: "tier", id: "confidential", rel: "clearance"}}
	for _, tc := range []struct {
		name  string
		retry time.Duration // from now
		want  int           // demand after one want
	}{
		{"before its retry", time.Minute, demandTooLarge},
		{"after its retry", -time.Second, 1},
	} {
		c := setCache{maxBytes: 1 << 20}
		c.init()
		c.demand.Add(k, demand{n: demandTooLarge, retry: time.Now().Add(tc.retry).UnixNano()})
		if c.want(k) {
			t.Errorf("%s: want computes the node at once", tc.name)
		}
		if d, _ := c.demand.Peek(k); d.n != tc.want {
			t.Errorf("%s: demand %d, want %d", tc.name, d.n, tc.want)
		}
	}
	// A node that ran out of time waits the longer of setRetryAfter and
	// setRetryFactor times the time spent.
	for _, tc := range []struct {
		spent, wait time.Duration
	}{
		{0, setRetryAfter},
		{5 * time.Second, setRetryAfter},
		{setWholeTime, setRetryFactor * setWholeTime},
	} {
		c := setCache{maxBytes: 1 << 20}
		before := time.Now()
		c.done(k, true, tc.spent)
		d, _ := c.demand.Peek(k)
		if lo, hi := before.Add(tc.wait).UnixNano(), time.Now().Add(tc.wait).UnixNano(); d.n != demandTooLarge || d.retry < lo || d.retry > hi {
			t.Errorf("done(too large after %v) left demand %+v, want too large for %v", tc.spent, d, tc.wait)
		}
	}
}

// TestWholeComputationBounded: a background computation may hold as many
// subjects as the set cache's budget could, and no fewer than 65,536
// whatever the budget.
func TestWholeComputationBounded(t *testing.T) {
	for _, tc := range []struct {
		cacheBytes int64
		want       int
	}{
		{256 << 20, 256 << 20 / setMemberBytes},
		{1 << 20, 1 << 16},
	} {
		if got := wholeMaxEntries(tc.cacheBytes); got != tc.want {
			t.Errorf("wholeMaxEntries(%d) = %d, want %d", tc.cacheBytes, got, tc.want)
		}
	}
}

// TestOneWholeComputationPerRelation: background computations take the
// free slots, but never two of one type#relation at once.
func TestOneWholeComputationPerRelation(t *testing.T) {
	e := New(Config{})
	steps := []struct {
		start, end string // "type#relation" to start or end
		want       bool   // startWhole's answer
	}{
		{start: "tier#clearance", want: true},
		{start: "tier#clearance", want: false}, // the same relation runs
		{start: "org#member", want: setWholeWorkers >= 2},
		{end: "tier#clearance"},
		{start: "tier#clearance", want: true},
	}
	for i, st := range steps {
		if st.end != "" {
			typ, rel, _ := strings.Cut(st.end, "#")
			e.endWhole(typ, rel)
			continue
		}
		typ, rel, _ := strings.Cut(st.start, "#")
		if got := e.startWhole(typ, rel); got != st.want {
			t.Errorf("step %d: startWhole(%s) = %v, want %v", i, st.start, got, st.want)
		}
	}
	if n := len(e.wholeRunning); n != 2 {
		t.Errorf("%d slots taken, want 2 (tier#clearance and org#member)", n)
	}
}
