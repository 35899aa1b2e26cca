package dispatch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// counting answers Yes for IDs starting with "y" and counts what it computed.
type counting struct {
	calls atomic.Int64
	low   Frame
	until int64
	gate  chan struct{} // when set, Resolve waits for it
}

func (c *counting) Resolve(ctx context.Context, _ struct{}, p *Problem, out []Answer) error {
	if c.gate != nil {
		<-c.gate
	}
	c.calls.Add(int64(len(p.ResourceIDs)))
	for i, id := range p.ResourceIDs {
		out[i] = Answer{Permissionship: No, Low: c.low, Until: c.until}
		if id[0] == 'y' {
			out[i].Permissionship = Yes
		}
	}
	return nil
}

func problem(rev uint64, now int64, ids ...string) *Problem {
	return &Problem{Revision: storage.Revision(rev), ResourceType: "doc", Relation: "view", ResourceIDs: ids,
		Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: "ann"}}, Now: now, Seq: 1}
}

// TestCache runs on a cache of one set and on a set-associative one.
func TestCache(t *testing.T) {
	for _, size := range []int{10, 100000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testCache(t, size) })
	}
}

func testCache(t *testing.T, size int) {
	ctx := context.Background()
	next := &counting{low: NoLow, until: 100}
	c, err := NewCache[struct{}](next, size)
	if err != nil {
		t.Fatal(err)
	}
	if slots := c.t.slots(); slots < size || slots >= size+ways {
		t.Fatalf("%d entries: %d slots", size, slots)
	}
	out := make([]Answer, 2)
	for _, tc := range []struct {
		name      string
		p         *Problem
		wantCalls int64
	}{
		{"cold", problem(1, 10, "yes", "no"), 2},
		{"warm", problem(1, 20, "yes", "no"), 2},
		{"partly warm", problem(1, 20, "yes", "nope"), 3},
		{"another revision", problem(2, 20, "yes", "no"), 5},
		{"expired input", problem(1, 100, "yes", "no"), 7},
		{"earlier than computed", problem(1, 5, "yes", "no"), 9},
	} {
		if err := c.Resolve(ctx, struct{}{}, tc.p, out); err != nil {
			t.Fatal(err)
		}
		if got := next.calls.Load(); got != tc.wantCalls {
			t.Errorf("%s: %d computed, want %d", tc.name, got, tc.wantCalls)
		}
		if out[0].Permissionship != Yes || out[1].Permissionship != No {
			t.Errorf("%s: answers %+v", tc.name, out)
		}
	}
	if c.Hits() != 3 || c.Misses() != 9 {
		t.Errorf("hits %d misses %d, want 3 and 9", c.Hits(), c.Misses())
	}
	// One answer per key: yes, no and nope at revision 1, yes and no at 2.
	if c.Len() != 5 {
		t.Errorf("%d cached answers, want 5", c.Len())
	}
	// Answers that assumed an evaluation in progress are never cached.
	next.low = 3
	c2, _ := NewCache[struct{}](next, 10)
	before := next.calls.Load()
	for range 2 {
		if err := c2.Resolve(ctx, struct{}{}, problem(1, 10, "no"), out[:1]); err != nil {
			t.Fatal(err)
		}
	}
	if got := next.calls.Load() - before; got != 2 {
		t.Errorf("a cycle-dependent answer was cached: %d computations, want 2", got)
	}
}

// TestTableReplacesLeastRecentlyUsed: a set full of keys replaces the one
// used longest ago, a lookup counting as a use and a Peek-like lookup
// (touch false) not.
func TestTableReplacesLeastRecentlyUsed(t *testing.T) {
	tb := newTable(3) // one set of three
	key := func(id string) Key { return KeyOf(problem(1, 1, id), 0) }
	for i, id := range []string{"a", "b", "c"} {
		tb.put(key(id), entry{at: int64(i)})
	}
	tb.get(key("a"), true)  // b is now the least recently used
	tb.get(key("b"), false) // a peek does not change that
	tb.put(key("d"), entry{at: 3})
	for id, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := tb.get(key(id), false); ok != want {
			t.Errorf("%s cached: %v, want %v", id, ok, want)
		}
	}
	tb.put(key("c"), entry{at: 9}) // a key stored again replaces its own slot
	if e, _ := tb.get(key("c"), false); e.at != 9 || tb.len() != 3 {
		t.Errorf("c stored again: entry at %d, %d slots used; want 9 and 3", e.at, tb.len())
	}
}

// TestTableConcurrent stores and reads keys from many goroutines: every
// entry read belongs to the key it was read under.
func TestTableConcurrent(t *testing.T) {
	tb := newTable(1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				id := fmt.Sprint(g*100000 + i%700)
				k := KeyOf(problem(1, 1, id), 0)
				if e, ok := tb.get(k, true); ok && e.missing[0] != id {
					t.Errorf("key %s holds the entry of %s", id, e.missing[0])
					return
				}
				tb.put(k, entry{missing: []string{id}})
			}
		})
	}
	wg.Wait()
	if n := tb.len(); n == 0 || n > tb.slots() {
		t.Errorf("%d slots used of %d", n, tb.slots())
	}
}

func TestSingleflightShares(t *testing.T) {
	next := &counting{low: NoLow, until: Never, gate: make(chan struct{})}
	sf := NewSingleflight[struct{}](next)
	var wg sync.WaitGroup
	results := make([]Answer, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := problem(1, 1, "yes")
			p.Seq = uint64(i + 1)
			out := make([]Answer, 1)
			if err := sf.Resolve(context.Background(), struct{}{}, p, out); err != nil {
				t.Error(err)
			}
			results[i] = out[0]
		}()
	}
	close(next.gate)
	wg.Wait()
	for i, r := range results {
		if r.Permissionship != Yes {
			t.Errorf("caller %d: %+v", i, r)
		}
	}
	if got := next.calls.Load() + int64(sf.Shared()); got != 8 {
		t.Errorf("computed %d + shared %d != 8 callers", next.calls.Load(), sf.Shared())
	}
}

// TestSingleflightNoDeadlock: two evaluations each leading one key and
// needing the other's must not wait for each other.
func TestSingleflightNoDeadlock(t *testing.T) {
	var sf *Singleflight[struct{}]
	var started sync.WaitGroup
	started.Add(2)
	inner := resolverFunc(func(ctx context.Context, p *Problem, out []Answer) error {
		if p.Now == 2 { // the nested request: answer at once
			out[0] = Answer{Permissionship: Yes, Low: NoLow, Until: Never}
			return nil
		}
		started.Done()
		started.Wait() // both lead their key before either asks for the other's
		q := *p
		q.Now = 2
		q.ResourceIDs = []string{map[string]string{"a": "b", "b": "a"}[p.ResourceIDs[0]]}
		return sf.Resolve(ctx, struct{}{}, &q, out)
	})
	sf = NewSingleflight[struct{}](inner)
	var wg sync.WaitGroup
	for i, id := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := problem(1, 1, id)
			p.Relation = "outer"
			p.Seq = uint64(i + 1)
			out := make([]Answer, 1)
			if err := sf.Resolve(context.Background(), struct{}{}, p, out); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

type resolverFunc func(ctx context.Context, p *Problem, out []Answer) error

func (f resolverFunc) Resolve(ctx context.Context, _ struct{}, p *Problem, out []Answer) error {
	return f(ctx, p, out)
}

// remoteAnswers answers like counting, marking its answers a peer's.
type remoteAnswers struct{ counting }

func (r *remoteAnswers) Resolve(ctx context.Context, s struct{}, p *Problem, out []Answer) error {
	if err := r.counting.Resolve(ctx, s, p, out); err != nil {
		return err
	}
	for i := range out {
		out[i].Remote = true
	}
	return nil
}

// TestCacheSkipsRemote: a peer's answer is cached by the peer, not again
// by the node that asked for it.
func TestCacheSkipsRemote(t *testing.T) {
	next := &remoteAnswers{counting{low: NoLow, until: Never}}
	c, err := NewCache[struct{}](next, 10)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Resolve(context.Background(), struct{}{}, problem(1, 1, "yes"), make([]Answer, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := next.calls.Load(); got != 2 || c.Len() != 0 {
		t.Errorf("%d computed, %d cached; want 2 and 0", got, c.Len())
	}
}

// BenchmarkCacheMisses resolves problems of one ID through a cache of
// 100,000 answers from 8 goroutines per GOMAXPROCS, every ID new, as
// random checks on a large graph mostly are: what the cache's lookups and
// stores cost, and how they scale with cores (-cpu 1,2).
func BenchmarkCacheMisses(b *testing.B) {
	next := &counting{low: NoLow, until: Never}
	c, err := NewCache[struct{}](next, 100000)
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		out := make([]Answer, 1)
		for pb.Next() {
			p := problem(1, 1, fmt.Sprintf("n%d", seq.Add(1)))
			if err := c.Resolve(context.Background(), struct{}{}, p, out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
