package dispatch

import (
	"context"
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

func TestCache(t *testing.T) {
	ctx := context.Background()
	next := &counting{low: NoLow, until: 100}
	c, err := NewCache[struct{}](next, 10)
	if err != nil {
		t.Fatal(err)
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
