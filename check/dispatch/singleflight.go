package dispatch

import (
	"context"
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
type Singleflight[S any] struct {
	next   Resolver[S]
	mu     sync.Mutex // guards calls
	calls  map[Key]*call
	shared atomic.Uint64
}

// call is one in-flight key. ans and err are written once, under mu,
// before done is closed, and read only after. done is made (under mu) by
// the first waiter, so a call nobody waits for costs no channel.
type call struct {
	seq  uint64
	now  int64 // the leader's Problem.Now
	done chan struct{}
	ans  Answer
	err  error
}

// wait returns the channel closed when c completes; s.mu must be held.
func (c *call) wait() <-chan struct{} {
	if c.done == nil {
		c.done = make(chan struct{})
	}
	return c.done
}

// NewSingleflight returns a singleflight layer in front of next.
func NewSingleflight[S any](next Resolver[S]) *Singleflight[S] {
	return &Singleflight[S]{next: next, calls: make(map[Key]*call)}
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
	s.mu.Lock()
	for i := range p.ResourceIDs {
		k := KeyOf(p, i)
		if c, ok := s.calls[k]; ok {
			if c.seq < p.Seq {
				waits = append(waits, c)
				waitIdx = append(waitIdx, i)
				dones = append(dones, c.wait())
				continue
			}
			own = append(own, i)
			continue
		}
		c := &call{seq: p.Seq, now: p.Now}
		s.calls[k] = c
		led = append(led, c)
		ledIdx = append(ledIdx, i)
		own = append(own, i)
	}
	s.mu.Unlock()

	err := s.resolve(ctx, scope, p, own, out)
	// Publish what we led, even on error, so waiters never hang.
	s.mu.Lock()
	for j, c := range led {
		i := ledIdx[j]
		if err != nil {
			c.err = err
		} else {
			c.ans = out[i]
		}
		delete(s.calls, KeyOf(p, i))
		if c.done != nil {
			close(c.done)
		}
	}
	s.mu.Unlock()
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
	s.mu.Lock()
	if c, ok := s.calls[k]; ok {
		if c.seq >= p.Seq {
			s.mu.Unlock()
			return s.next.Resolve(ctx, scope, p, out)
		}
		done := c.wait()
		s.mu.Unlock()
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
	s.calls[k] = c
	s.mu.Unlock()
	err := s.next.Resolve(ctx, scope, p, out)
	s.mu.Lock()
	c.ans, c.err = out[0], err
	delete(s.calls, k)
	if c.done != nil {
		close(c.done)
	}
	s.mu.Unlock()
	return err
}
