package dispatch

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Singleflight shares the evaluation of identical concurrent sub-problems:
// while one evaluation computes a key, others asking for it wait for its
// answer instead of computing it again.
//
// Deadlock freedom: evaluations can depend on each other in a cycle (A
// needs X while computing Y, B needs Y while computing X). A caller only
// waits for a call led by an older evaluation (smaller Problem.Seq) and
// computes the key itself otherwise, so the waits-for relation strictly
// decreases Seq and cannot cycle. An answer that is not Shareable (it
// rests on the leader's own open frames, see Frame), or whose validity
// window (see Cache) does not contain the waiter's "now", is not handed
// over; the waiter computes it itself.
//
// The calls in flight are kept in shards by key, each with its own lock:
// every sub-problem of every check passes through here, and with one lock
// concurrent checks spent their time waiting for each other on it.
type Singleflight[S any] struct {
	next   Resolver[S]
	seed   maphash.Seed
	shards [singleflightShards]flightShard
	shared atomic.Uint64
}

// singleflightShards is how many locks the calls in flight are spread over.
const singleflightShards = 64

// flightShard is one lock and the calls in flight whose keys it holds.
type flightShard struct {
	mu    sync.Mutex // guards calls
	calls map[Key]*call
	_     [40]byte // keep shards' locks on their own cache lines
}

// shard returns the shard holding k.
func (s *Singleflight[S]) shard(k Key) *flightShard {
	h := maphash.String(s.seed, k.ResourceID) ^ maphash.String(s.seed, k.Subject.Object.ID)
	return &s.shards[h%singleflightShards]
}

// call is one in-flight key. ans and err are written once, under its
// shard's mu, before done is closed, and read only after. done is made
// (under mu) by the first waiter, so a call nobody waits for costs no
// channel.
type call struct {
	seq  uint64
	now  int64 // the leader's Problem.Now
	done chan struct{}
	ans  Answer
	err  error
}

// wait returns the channel closed when c completes; its shard's mu must
// be held.
func (c *call) wait() <-chan struct{} {
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// NewSingleflight returns a singleflight layer in front of next.
func NewSingleflight[S any](next Resolver[S]) *Singleflight[S] {
	s := &Singleflight[S]{next: next, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].calls = make(map[Key]*call)
	}
	return s
}

// Resolve computes the IDs nobody older is computing (leading those nobody
// is computing) and waits for the rest.
func (s *Singleflight[S]) Resolve(ctx context.Context, scope S, p *Problem, out []Answer) error {
	if len(p.ResourceIDs) == 1 {
		return s.resolveOne(ctx, scope, p, out)
	}
	n := len(p.ResourceIDs)
	own := make([]int, 0, n)
	var led []*call
	var ledIdx []int
	var waits []*call
	var waitIdx []int
	var dones []<-chan struct{}
	for i := range p.ResourceIDs {
		k := KeyOf(p, i)
		sh := s.shard(k)
		sh.mu.Lock()
		if c, ok := sh.calls[k]; ok {
			if c.seq < p.Seq {
				waits = append(waits, c)
				waitIdx = append(waitIdx, i)
				dones = append(dones, c.wait())
			} else {
				own = append(own, i)
			}
			sh.mu.Unlock()
			continue
		}
		c := &call{seq: p.Seq, now: p.Now}
		sh.calls[k] = c
		sh.mu.Unlock()
		led = append(led, c)
		ledIdx = append(ledIdx, i)
		own = append(own, i)
	}

	err := s.resolve(ctx, scope, p, own, out)
	// Publish what we led, even on error, so waiters never hang.
	for j, c := range led {
		i := ledIdx[j]
		k := KeyOf(p, i)
		sh := s.shard(k)
		sh.mu.Lock()
		if err != nil {
			c.err = err
		} else {
			c.ans = out[i]
		}
		delete(sh.calls, k)
		if c.done != nil {
			close(c.done)
		}
		sh.mu.Unlock()
	}
	if err != nil {
		return err
	}

	var redo []int
	for j, c := range waits {
		select {
		case <-dones[j]:
		case <-ctx.Done():
			return ctx.Err()
		}
		i := waitIdx[j]
		if !c.usable(p) {
			redo = append(redo, i)
			continue
		}
		out[i] = c.ans
		s.shared.Add(1)
	}
	return s.resolve(ctx, scope, p, redo, out)
}

// resolve asks next for the IDs at idx and places the answers in out.
func (s *Singleflight[S]) resolve(ctx context.Context, scope S, p *Problem, idx []int, out []Answer) error {
	if len(idx) == 0 {
		return nil
	}
	if len(idx) == len(p.ResourceIDs) {
		return s.next.Resolve(ctx, scope, p, out)
	}
	q := subProblem(p, idx)
	sub := make([]Answer, len(idx))
	if err := s.next.Resolve(ctx, scope, q, sub); err != nil {
		return err
	}
	for j, i := range idx {
		out[i] = sub[j]
	}
	return nil
}

// Shared returns how many answers were taken from another evaluation.
func (s *Singleflight[S]) Shared() uint64 { return s.shared.Load() }

// usable reports whether the completed call's answer may be handed to p:
// no error, no assumption about the leader's own open evaluations, and p's
// "now" inside the answer's validity window (see Cache).
func (c *call) usable(p *Problem) bool {
	return c.err == nil && c.ans.Shareable() && c.now <= p.Now && p.Now < c.ans.Until
}

// resolveOne is Resolve for a single ID, without the batch bookkeeping.
func (s *Singleflight[S]) resolveOne(ctx context.Context, scope S, p *Problem, out []Answer) error {
	k := KeyOf(p, 0)
	sh := s.shard(k)
	sh.mu.Lock()
	if c, ok := sh.calls[k]; ok {
		if c.seq >= p.Seq {
			sh.mu.Unlock()
			return s.next.Resolve(ctx, scope, p, out)
		}
		done := c.wait()
		sh.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.usable(p) {
			out[0] = c.ans
			s.shared.Add(1)
			return nil
		}
		return s.next.Resolve(ctx, scope, p, out)
	}
	c := &call{seq: p.Seq, now: p.Now}
	sh.calls[k] = c
	sh.mu.Unlock()
	err := s.next.Resolve(ctx, scope, p, out)
	sh.mu.Lock()
	c.ans, c.err = out[0], err
	delete(sh.calls, k)
	if c.done != nil {
		close(c.done)
	}
	sh.mu.Unlock()
	return err
}
