package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Remote sends the share of a problem another node owns to that node,
// and passes the rest to next. It sits below Singleflight, above the
// local evaluator: a problem reaching it missed this node's cache and is
// not being computed here already.
//
// Only Dispatchable problems go to peers; see the package doc for why.
// Each resource ID's owner is chosen by the cluster's Ring from its Key;
// the IDs this node owns are evaluated by next while the peers' shares
// are in flight. A peer's share comes back as answers marked Remote (the
// owner's cache holds them, so Cache here does not store them again). A
// share whose peer is backed off, fails, or has not answered within the
// hedge delay is evaluated by next instead: a peer never fails a check.
type Remote[S any] struct {
	next    Resolver[S]
	cluster *Cluster
}

// NewRemote returns a dispatching layer in front of next.
func NewRemote[S any](next Resolver[S], c *Cluster) *Remote[S] {
	return &Remote[S]{next: next, cluster: c}
}

// Dispatchable reports whether p may be sent to a peer: it was not
// received from one (Local) and depends on no caveat context.
func Dispatchable(p *Problem) bool { return !p.Local && p.ContextHash == 0 }

// share is the part of a problem sent to one peer, and its outcome.
type share struct {
	peer  string
	idx   []int // positions in the original problem
	start time.Time
	done  chan result // buffered: the sender never blocks
}

type result struct {
	ans []Answer
	err error
}

// Resolve answers p, asking peers for the IDs they own.
func (r *Remote[S]) Resolve(ctx context.Context, scope S, p *Problem, out []Answer) error {
	if !Dispatchable(p) {
		return r.next.Resolve(ctx, scope, p, out)
	}
	ring, self := r.cluster.Members()
	if ring.Len() == 0 {
		return r.next.Resolve(ctx, scope, p, out)
	}
	now := time.Now()
	var local []int
	byPeer := map[string][]int{}
	var peers []string // in first-seen order, so dispatch is deterministic
	for i := range p.ResourceIDs {
		owner := ring.Owner(KeyHash(KeyOf(p, i)))
		if owner == self {
			local = append(local, i)
			continue
		}
		if _, ok := byPeer[owner]; !ok {
			peers = append(peers, owner)
		}
		byPeer[owner] = append(byPeer[owner], i)
	}
	if len(peers) == 0 {
		return r.next.Resolve(ctx, scope, p, out)
	}
	timeout, ok := r.dispatchTimeout(ctx, now)
	var shares []*share
	for _, peer := range peers {
		idx := byPeer[peer]
		for start := 0; start < len(idx); start += MaxDispatchIDs {
			part := idx[start:min(start+MaxDispatchIDs, len(idx))]
			switch {
			case !ok:
				r.cluster.fallback(peer, ReasonDeadline)
				local = append(local, part...)
			case !r.cluster.healthy(peer, now):
				r.cluster.fallback(peer, ReasonUnhealthy)
				local = append(local, part...)
			default:
				shares = append(shares, r.send(ctx, peer, subProblem(p, part), part, timeout))
			}
		}
	}
	if err := r.resolveLocal(ctx, scope, p, local, out); err != nil {
		return err
	}
	var redo []int
	for _, sh := range shares {
		ans, reason, err := r.wait(ctx, sh)
		if err != nil {
			return err
		}
		if reason != "" {
			r.cluster.fallback(sh.peer, reason)
			redo = append(redo, sh.idx...)
			continue
		}
		for j, i := range sh.idx {
			out[i] = ans[j]
		}
	}
	return r.resolveLocal(ctx, scope, p, redo, out)
}

// dispatchTimeout is how long one dispatch of a request may take: the
// cluster's timeout, at most half the time the request has left (the
// other half is for a fallback). ok is false when the request's share is
// shorter than both the hedge delay and the cluster's timeout: it would
// give up on the peer before the peer could be expected to answer.
func (r *Remote[S]) dispatchTimeout(ctx context.Context, now time.Time) (time.Duration, bool) {
	t := r.cluster.timeout()
	if d, has := ctx.Deadline(); has && d.Sub(now)/2 < t {
		half := d.Sub(now) / 2
		return half, half >= min(t, r.cluster.hedgeDelay())
	}
	return t, true
}

// send starts dispatching q (the IDs at idx) to peer. The call outlives
// a request that stops waiting for it (hedge delay) until it ends or its
// timeout, so a slow owner still computes and caches the answer; it is
// cancelled with the request.
func (r *Remote[S]) send(ctx context.Context, peer string, q *Problem, idx []int, timeout time.Duration) *share {
	sh := &share{peer: peer, idx: idx, start: time.Now(), done: make(chan result, 1)}
	r.cluster.sent(peer)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ans, err := r.cluster.Transport.Dispatch(cctx, peer, q)
		if err == nil && len(ans) != len(q.ResourceIDs) {
			err = fmt.Errorf("dispatch to %s: %d answers for %d resource IDs", peer, len(ans), len(q.ResourceIDs))
		}
		switch {
		case err == nil:
			r.cluster.succeeded(peer)
		case ctx.Err() == nil && !errors.Is(err, ErrRefused): // the peer failed, not the request
			r.cluster.failed(peer, time.Now())
		}
		sh.done <- result{ans, err}
	}()
	return sh
}

// wait returns sh's answers, marked Remote, or the reason to evaluate
// them locally instead. Its error is the request's own (ctx ended).
func (r *Remote[S]) wait(ctx context.Context, sh *share) ([]Answer, Reason, error) {
	var res result
	select {
	case res = <-sh.done: // answered while this node evaluated its share
	default:
		hedge := time.NewTimer(time.Until(sh.start.Add(r.cluster.hedgeDelay())))
		defer hedge.Stop()
		select {
		case res = <-sh.done:
		case <-hedge.C:
			return nil, ReasonSlow, nil
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	if res.err != nil {
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, ReasonError, nil
	}
	for j := range res.ans {
		res.ans[j].Low = NoLow // a peer's answer comes from an evaluation of its own
		res.ans[j].Remote = true
	}
	return res.ans, "", nil
}

// resolveLocal asks next for the IDs at idx.
func (r *Remote[S]) resolveLocal(ctx context.Context, scope S, p *Problem, idx []int, out []Answer) error {
	if len(idx) == 0 {
		return nil
	}
	if len(idx) == len(p.ResourceIDs) {
		return r.next.Resolve(ctx, scope, p, out)
	}
	q := subProblem(p, idx)
	sub := make([]Answer, len(idx))
	if err := r.next.Resolve(ctx, scope, q, sub); err != nil {
		return err
	}
	for j, i := range idx {
		out[i] = sub[j]
	}
	return nil
}
