package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// peers is an in-memory Transport: each peer answers like counting, or
// fails, or stalls.
type peers struct {
	mu     sync.Mutex
	got    map[string][]string // peer → IDs it was asked
	down   map[string]bool
	stall  map[string]bool
	answer counting
}

func (ps *peers) Dispatch(ctx context.Context, peer string, p *Problem) ([]Answer, error) {
	ps.mu.Lock()
	down, stall := ps.down[peer], ps.stall[peer]
	if !down {
		ps.got[peer] = append(ps.got[peer], p.ResourceIDs...)
	}
	ps.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	if stall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := make([]Answer, len(p.ResourceIDs))
	err := ps.answer.Resolve(ctx, struct{}{}, p, out)
	return out, err
}

type observed struct {
	mu        sync.Mutex
	sent      map[string]int
	fallbacks map[Reason]int
}

func (o *observed) Sent(peer string) { o.mu.Lock(); o.sent[peer]++; o.mu.Unlock() }
func (o *observed) Fallback(_ string, r Reason) {
	o.mu.Lock()
	o.fallbacks[r]++
	o.mu.Unlock()
}

func newCluster(t *testing.T) (*Cluster, *peers, *observed) {
	t.Helper()
	ps := &peers{got: map[string][]string{}, down: map[string]bool{}, stall: map[string]bool{}, answer: counting{low: NoLow, until: Never}}
	obs := &observed{sent: map[string]int{}, fallbacks: map[Reason]int{}}
	c := &Cluster{Transport: ps, Observer: obs, HedgeDelay: 50 * time.Millisecond, Backoff: time.Hour}
	c.SetMembers([]string{"self:1", "b:1", "c:1"}, "self:1")
	return c, ps, obs
}

func ids(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("y%d", i)
	}
	return s
}

func TestRemoteSplitsByOwner(t *testing.T) {
	c, ps, obs := newCluster(t)
	local := &counting{low: NoLow, until: Never}
	r := NewRemote[struct{}](local, c)
	p := problem(1, 1, ids(60)...)
	out := make([]Answer, len(p.ResourceIDs))
	if err := r.Resolve(context.Background(), struct{}{}, p, out); err != nil {
		t.Fatal(err)
	}
	ring, _ := c.Members()
	remote := 0
	for i, a := range out {
		owner := ring.Owner(KeyHash(KeyOf(p, i)))
		if a.Permissionship != Yes || a.Remote != (owner != "self:1") {
			t.Errorf("%s (owner %s): %+v", p.ResourceIDs[i], owner, a)
		}
		if a.Remote {
			remote++
		}
	}
	if int(local.calls.Load())+remote != 60 || len(ps.got["b:1"])+len(ps.got["c:1"]) != remote || remote == 0 {
		t.Errorf("local %d, remote %d, peers got %v", local.calls.Load(), remote, ps.got)
	}
	if obs.sent["b:1"] != 1 || obs.sent["c:1"] != 1 {
		t.Errorf("sent %v, want one problem per peer", obs.sent)
	}
}

func TestRemoteKeepsLocal(t *testing.T) {
	c, ps, _ := newCluster(t)
	local := &counting{low: NoLow, until: Never}
	r := NewRemote[struct{}](local, c)
	for name, edit := range map[string]func(*Problem){
		"received":       func(p *Problem) { p.Local = true },
		"caveat context": func(p *Problem) { p.ContextHash = 42 },
	} {
		p := problem(1, 1, ids(30)...)
		edit(p)
		if err := r.Resolve(context.Background(), struct{}{}, p, make([]Answer, 30)); err != nil {
			t.Fatal(err)
		}
		if len(ps.got) != 0 {
			t.Errorf("%s: dispatched %v", name, ps.got)
		}
	}
}

// TestRemoteFallback: a failing peer is backed off, a stalled one hedged;
// every answer is still given.
func TestRemoteFallback(t *testing.T) {
	c, ps, obs := newCluster(t)
	ps.down["b:1"] = true
	ps.stall["c:1"] = true
	local := &counting{low: NoLow, until: Never}
	r := NewRemote[struct{}](local, c)
	for round := range 2 {
		p := problem(1, 1, ids(60)...)
		out := make([]Answer, 60)
		if err := r.Resolve(context.Background(), struct{}{}, p, out); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, a := range out {
			if a.Permissionship != Yes || a.Remote {
				t.Errorf("round %d: %s: %+v", round, p.ResourceIDs[i], a)
			}
		}
	}
	if local.calls.Load() != 120 {
		t.Errorf("%d evaluated locally, want 120", local.calls.Load())
	}
	// The stalled peer's calls end at their timeout and back it off
	// only then; the failed one is skipped in round 2.
	if obs.fallbacks[ReasonError] != 1 || obs.fallbacks[ReasonUnhealthy] != 1 || obs.fallbacks[ReasonSlow] < 1 {
		t.Errorf("fallbacks %v", obs.fallbacks)
	}
}

func TestRemoteRequestDeadline(t *testing.T) {
	c, ps, obs := newCluster(t)
	r := NewRemote[struct{}](&counting{low: NoLow, until: Never}, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond) // half is below the hedge delay
	defer cancel()
	if err := r.Resolve(ctx, struct{}{}, problem(1, 1, ids(30)...), make([]Answer, 30)); err != nil {
		t.Fatal(err)
	}
	if len(ps.got) != 0 || obs.fallbacks[ReasonDeadline] != 2 {
		t.Errorf("dispatched %v, fallbacks %v", ps.got, obs.fallbacks)
	}
}
