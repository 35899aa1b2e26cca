package reach

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// TestEdgeStoreMatchesMaps: nodes' edge lists kept in one store hold
// what a map per node holds, through random adds, replacements and
// removals that move lists between slot sizes, into big lists and back to
// empty, with freed slots reused by other nodes.
func TestEdgeStoreMatchesMaps(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var p edgeStore
		nodes := make([]adj, 1+rng.IntN(40))
		want := make([]map[uint32]int64, len(nodes))
		for i := range want {
			want[i] = map[uint32]int64{}
		}
		// Some nodes grow past adjIndexAt; targets come from a range that
		// makes replacements and failed removals common too.
		span := uint32(8 + rng.IntN(3*adjIndexAt))
		for op := range 3000 {
			x := rng.IntN(len(nodes))
			to := rng.Uint32N(span)
			if rng.IntN(3) == 0 {
				_, had := want[x][to]
				if got := p.remove(&nodes[x], to); got != had {
					t.Fatalf("seed %d op %d: remove(%d, %d) = %v, want %v", seed, op, x, to, got, had)
				}
				delete(want[x], to)
			} else {
				exp := rng.Int64()
				_, had := want[x][to]
				if got := p.set(&nodes[x], to, exp); got == had {
					t.Fatalf("seed %d op %d: set(%d, %d) = %v, want %v", seed, op, x, to, got, !had)
				}
				want[x][to] = exp
			}
			for y := range nodes {
				got := map[uint32]int64{}
				for _, e := range p.edges(nodes[y]) {
					if _, dup := got[e.to]; dup {
						t.Fatalf("seed %d op %d: node %d lists %d twice", seed, op, y, e.to)
					}
					got[e.to] = e.exp
				}
				if !maps.Equal(got, want[y]) {
					t.Fatalf("seed %d op %d: node %d has %v, want %v", seed, op, y, got, want[y])
				}
				for _, to := range slices.Collect(maps.Keys(want[y])) {
					if i := p.find(nodes[y], to); i < 0 || p.edges(nodes[y])[i].to != to {
						t.Fatalf("seed %d op %d: node %d: find(%d) = %d", seed, op, y, to, i)
					}
				}
			}
		}
		if p.bytes() <= 0 {
			t.Fatalf("seed %d: bytes %d", seed, p.bytes())
		}
	}
}

// TestEdgeStoreReusesSlots: a list that empties gives its slot back, so
// nodes filled and emptied in turn take no more chunks than one of them
// at its largest.
func TestEdgeStoreReusesSlots(t *testing.T) {
	var p edgeStore
	nodes := make([]adj, 100)
	for range 50 {
		for x := range nodes {
			for to := range uint32(adjIndexAt - 1) {
				p.set(&nodes[x], to, Never)
			}
		}
		for x := range nodes {
			for to := range uint32(adjIndexAt - 1) {
				p.remove(&nodes[x], to)
			}
			if nodes[x] != (adj{}) {
				t.Fatalf("emptied node %d is %+v", x, nodes[x])
			}
		}
	}
	// 100 lists of 31 edges need 100 slots of 32; the smaller slots each
	// list passed through are reused by the next list.
	if n := p.bytes(); n > 2*100*adjIndexAt*16+chunkLen*16 {
		t.Fatalf("store holds %d bytes after refills", n)
	}
	if size := unsafe.Sizeof(adj{}); size != adjBytes {
		t.Fatalf("an adj takes %d bytes, adjBytes says %d", size, adjBytes)
	}
}

// TestHolderStoreCompacts: holders replaced again and again keep at most
// about twice the live words, and holders a reader took before a
// compaction keep their content.
func TestHolderStoreCompacts(t *testing.T) {
	var st holderStore
	up := make([]span, 1000)
	entries := func(round, u int) []entry {
		es := make([]entry, 1+u%40)
		for i := range es {
			es[i] = entry{obj: uint32(i * 3), level: int32(1 + (round+i)%5), until: Never}
			if u%7 == 0 {
				es[i].until = int64(round*1000 + i)
			}
		}
		return es
	}
	var held holders
	var heldWant []entry
	for round := range 60 {
		for u := range up {
			if u == 500 {
				// A subject with more holders than a chunk's eighth gets a
				// chunk of its own.
				big := make([]entry, chunkLen)
				for i := range big {
					big[i] = entry{obj: uint32(i), level: 1, until: Never}
				}
				h := st.pack(big)
				st.replaced(up[u], h)
				up[u] = h
				continue
			}
			h := st.pack(entries(round, u))
			st.replaced(up[u], h)
			up[u] = h
		}
		if round == 3 {
			held, heldWant = st.view(up[7]), entries(3, 7)
		}
		st.compact(up)
		if st.words.live+st.words.dead > 2*st.words.live+compactAfter {
			t.Fatalf("round %d: %d live words, %d dead", round, st.words.live, st.words.dead)
		}
	}
	if st.words.dead == 0 && st.words.live == 0 {
		t.Fatal("nothing counted")
	}
	for u, sp := range up {
		h := st.view(sp)
		if u == 500 {
			if h.len() != chunkLen {
				t.Fatalf("big holders have %d objects", h.len())
			}
			continue
		}
		for _, e := range entries(59, u) {
			if got, ok := h.find(e.obj); !ok || got != e {
				t.Fatalf("subject %d: find(%d) = %+v, %v; want %+v", u, e.obj, got, ok, e)
			}
		}
	}
	for _, e := range heldWant {
		if got, ok := held.find(e.obj); !ok || got != e {
			t.Fatalf("held holders: find(%d) = %+v, %v; want %+v", e.obj, got, ok, e)
		}
	}
}

// TestNamesNumberEachNameOnce: names get numbers in order, keep them
// through the table's growth, and give back the same strings; names whose
// strings only split differently, empty ones and ones longer than an
// arena chunk's share are distinct names.
func TestNamesNumberEachNameOnce(t *testing.T) {
	var objs names[string]
	var subs names[graph.ObjectRef]
	long := strings.Repeat("x", chunkLen/4)
	var wantObjs []string
	var wantSubs []graph.ObjectRef
	for i := range 5000 {
		o := fmt.Sprintf("o%d", i)
		s := graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", i)}
		switch i {
		case 10:
			o, s = "", graph.ObjectRef{Type: "us", ID: "eru1"} // "user"+"u1" split elsewhere
		case 11:
			o, s = long, graph.ObjectRef{Type: "user", ID: long}
		case 12:
			s = graph.ObjectRef{Type: "user", ID: ""}
		}
		if x := objs.intern(o); x != uint32(i) {
			t.Fatalf("intern(%q) = %d, want %d", o, x, i)
		}
		if x := subs.intern(s); x != uint32(i) {
			t.Fatalf("intern(%v) = %d, want %d", s, x, i)
		}
		wantObjs, wantSubs = append(wantObjs, o), append(wantSubs, s)
	}
	for i := range wantObjs {
		if x, ok := objs.lookup(wantObjs[i]); !ok || x != uint32(i) || objs.intern(wantObjs[i]) != x || objs.name(x) != wantObjs[i] {
			t.Fatalf("object %d (%.20q): lookup %d %v, name %.20q", i, wantObjs[i], x, ok, objs.name(uint32(i)))
		}
		if x, ok := subs.lookup(wantSubs[i]); !ok || x != uint32(i) || subs.intern(wantSubs[i]) != x || subs.name(x) != wantSubs[i] {
			t.Fatalf("subject %d (%.20v): lookup %d %v, name %.20v", i, wantSubs[i], x, ok, subs.name(uint32(i)))
		}
	}
	for _, o := range []string{"o5000", "o", "x"} {
		if x, ok := objs.lookup(o); ok {
			t.Fatalf("lookup(%q) = %d for a name never interned", o, x)
		}
	}
	if x, ok := subs.lookup(graph.ObjectRef{Type: "use", ID: "ru1"}); ok {
		t.Fatalf("lookup(use:ru1) = %d for a name never interned", x)
	}
	if objs.len() != 5000 || subs.len() != 5000 {
		t.Fatalf("len %d and %d, want 5000", objs.len(), subs.len())
	}
}

// TestHolderStoreBigHoldersKeepTheChunkFilling: holders too large for a
// shared chunk get their own without ending the chunk being filled, and
// each span reads back what was packed.
func TestHolderStoreBigHoldersKeepTheChunkFilling(t *testing.T) {
	var st holderStore
	small := []entry{{obj: 2, level: 1, until: Never}, {obj: 5, level: 3, until: 77}}
	big := make([]entry, chunkLen)
	for i := range big {
		big[i] = entry{obj: uint32(i), level: 2, until: Never}
	}
	a, b, c := st.pack(small), st.pack(big), st.pack(small)
	if a.at>>15 != c.at>>15 || b.at>>15 == a.at>>15 {
		t.Fatalf("chunks: small %d, big %d, small again %d", a.at>>15, b.at>>15, c.at>>15)
	}
	for _, sp := range []span{a, c} {
		for _, e := range small {
			if got, ok := st.view(sp).find(e.obj); !ok || got != e {
				t.Fatalf("span %+v: find(%d) = %+v %v", sp, e.obj, got, ok)
			}
		}
	}
	if got, ok := st.view(b).find(1000); !ok || got.level != 2 {
		t.Fatalf("big span: find(1000) = %+v %v", got, ok)
	}
}

// TestHolderStoreReadersWhilePacking (run with -race): readers view
// published spans under a read lock and keep reading the holders after
// it, while the writer packs new holders without the lock, adding chunks,
// and publishes and compacts under it, as Index.Apply does; every view
// reads back one packing whole.
func TestHolderStoreReadersWhilePacking(t *testing.T) {
	var (
		mu   sync.RWMutex
		st   holderStore
		up   = make([]span, 8)
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	packing := func(round int) []entry {
		n := 10
		if round%2 == 1 {
			n = chunkLen // a chunk of its own
		}
		es := make([]entry, n)
		for i := range es {
			es[i] = entry{obj: uint32(i), level: int32(1 + round%1000), until: Never}
		}
		return es
	}
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for {
				select {
				case <-done:
					return
				default:
				}
				mu.RLock()
				h := st.view(up[rng.IntN(len(up))])
				mu.RUnlock()
				for i := range h.len() {
					if h.objs[i] != uint32(i) || h.levels[i] != h.levels[0] {
						t.Errorf("a view mixes packings: entry %d is %d at level %d, entry 0 at level %d", i, h.objs[i], h.levels[i], h.levels[0])
						return
					}
				}
			}
		}()
	}
	for round := range 400 {
		sp := st.pack(packing(round))
		mu.Lock()
		u := round % len(up)
		st.replaced(up[u], sp)
		up[u] = sp
		st.compact(up)
		mu.Unlock()
	}
	close(done)
	wg.Wait()
	if st.words.dead > st.words.live+compactAfter {
		t.Fatalf("%d dead words against %d live: never compacted", st.words.dead, st.words.live)
	}
}

// TestAncestorsSurviveCompaction: a long chain of nested groups whose top
// link is cut and restored again and again replaces hundreds of thousands
// of ancestor entries each time; the set compacts them, and the subject at
// the bottom keeps exactly the holders of the chain.
func TestAncestorsSurviveCompaction(t *testing.T) {
	const depth = 800
	s := newSet(Key{"group", "member"}, nil)
	group := func(i int) graph.ObjectRef { return graph.ObjectRef{Type: "group", ID: fmt.Sprintf("g%d", i)} }
	nest := func(parent, child int) graph.Relationship {
		return graph.Relationship{Resource: group(parent), Relation: "member",
			Subject: graph.SubjectRef{Object: group(child), Relation: "member"}}
	}
	apply := func(r graph.Relationship, del bool) {
		var d dirty
		s.change(r, del, &d)
		s.refresh(&d)
	}
	for i := 1; i < depth; i++ {
		apply(nest(i-1, i), false)
	}
	apply(graph.Relationship{Resource: group(depth - 1), Relation: "member",
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "u"}}}, false)
	compactions, chunks := 0, len(s.ancs.chunks())
	for range 4 {
		for _, del := range []bool{true, false} {
			apply(nest(0, 1), del)
			if n := len(s.ancs.chunks()); n < chunks {
				compactions++
			}
			chunks = len(s.ancs.chunks())
			if s.ancs.dead > s.ancs.live+compactAfter {
				t.Fatalf("%d dead ancestor entries against %d live", s.ancs.dead, s.ancs.live)
			}
		}
	}
	if compactions == 0 {
		t.Fatal("the ancestors never compacted")
	}
	u, ok := s.subjects.lookup(graph.ObjectRef{Type: "user", ID: "u"})
	if !ok {
		t.Fatal("subject u unknown")
	}
	h := s.holders.view(s.up[u])
	if h.len() != depth {
		t.Fatalf("u has %d holders, want %d", h.len(), depth)
	}
	for i := range depth {
		x, _ := s.objects.lookup(group(i).ID)
		if e, ok := h.find(x); !ok || e.level != int32(depth-i) {
			t.Fatalf("g%d: %+v %v, want level %d", i, e, ok, depth-i)
		}
	}
}

// TestStatsWhileApplying (run with -race): the index's size and answers
// are read while changes that re-nest groups are applied, whose
// recomputation (without the lock) moves ancestors and holders in their
// stores.
func TestStatsWhileApplying(t *testing.T) {
	f := newFixture(t)
	for i := 1; i < 40; i++ {
		f.write(storage.OpTouch, member(fmt.Sprintf("g%d", i-1), fmt.Sprintf("group:g%d#member", i)))
	}
	f.write(storage.OpTouch, member("g39", "user:u"))
	f.build()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if st := f.ix.Stats(); st.Bytes <= 0 {
				t.Errorf("stats report %d bytes", st.Bytes)
				return
			}
			if rev, ok := f.ix.Revision(); ok {
				f.ix.Holders(rev, "group", "member", graph.ObjectRef{Type: "user", ID: "u"}, time.Now().UnixNano())
			}
		}
	}()
	for i := range 60 {
		op := storage.OpDelete
		if i%2 == 1 {
			op = storage.OpTouch
		}
		f.write(op, member("g0", "group:g1#member"))
		f.catchUp()
	}
	close(done)
	wg.Wait()
	rev, _ := f.ix.Revision()
	if got := f.holds(rev, time.Now(), "u", "g0"); got != "level "+string(rune('0'+40)) {
		t.Fatalf("u in g0: %s", got)
	}
}
