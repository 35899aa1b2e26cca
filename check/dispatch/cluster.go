package dispatch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Transport sends a problem to a peer and returns the peer's answers, one
// per resource ID, in order. An error that wraps ErrRefused says the peer
// is healthy but would not answer this problem (its evaluation failed,
// or it found the problem invalid); any other error backs the peer off.
type Transport interface {
	Dispatch(ctx context.Context, peer string, p *Problem) ([]Answer, error)
}

// ErrRefused marks a peer's refusal of one problem (see Transport).
var ErrRefused = errors.New("peer refused the problem")

// Observer is told of dispatches and fallbacks, for metrics. Its methods
// are called concurrently.
type Observer interface {
	// Sent counts a problem sent to peer.
	Sent(peer string)
	// Fallback counts a problem owned by peer that was evaluated here
	// instead, and why.
	Fallback(peer string, reason Reason)
}

// Reason is why a peer's problem was evaluated locally.
type Reason string

// Fallback reasons.
const (
	// ReasonUnhealthy: the peer failed recently and is backed off.
	ReasonUnhealthy Reason = "unhealthy"
	// ReasonError: the peer answered with an error or could not be reached.
	ReasonError Reason = "error"
	// ReasonSlow: the peer did not answer within the hedge delay.
	ReasonSlow Reason = "slow"
	// ReasonDeadline: the request had too little time left to ask a peer.
	ReasonDeadline Reason = "deadline"
)

// MaxDispatchIDs bounds the resource IDs of one dispatched problem; a
// larger share is sent as several problems, and a receiver refuses more.
const MaxDispatchIDs = 1000

// Defaults of Cluster's durations.
const (
	DefaultHedgeDelay = 100 * time.Millisecond
	DefaultTimeout    = time.Second
	DefaultBackoff    = time.Second
	maxBackoff        = 30 * time.Second
)

// Cluster is the membership, transport and policy the Remote layer
// dispatches by. Set the exported fields before use; SetMembers may be
// called at any time.
type Cluster struct {
	Transport Transport
	// Observer may be nil.
	Observer Observer
	// HedgeDelay is how long a request waits for a peer's answer (after
	// evaluating its own share) before evaluating the peer's share itself
	// (default DefaultHedgeDelay).
	HedgeDelay time.Duration
	// Timeout caps one dispatch; it is also at most half the time the
	// request has left, so a fallback has the other half (default
	// DefaultTimeout).
	Timeout time.Duration
	// Backoff is how long a peer that failed is skipped; it doubles with
	// each further failure, up to 30s, and resets on success (default
	// DefaultBackoff).
	Backoff time.Duration

	members atomic.Pointer[membership]
	mu      sync.Mutex             // guards health
	health  map[string]*peerHealth // key: peer address
}

// membership is one ring and which of its members this node is.
type membership struct {
	ring *Ring
	self string
}

// peerHealth is a peer's backoff after failures.
type peerHealth struct {
	until   time.Time     // skipped until then
	backoff time.Duration // the next failure's backoff
}

// SetMembers replaces the ring: members are every node's address, self
// is this node's ("" when it is not among them: it then owns nothing).
func (c *Cluster) SetMembers(members []string, self string) {
	c.members.Store(&membership{ring: NewRing(members), self: self})
}

// Members returns the current ring and this node's address in it.
func (c *Cluster) Members() (*Ring, string) {
	m := c.members.Load()
	if m == nil {
		return NewRing(nil), ""
	}
	return m.ring, m.self
}

// healthy reports whether peer may be asked now.
func (c *Cluster) healthy(peer string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health[peer]
	return h == nil || !now.Before(h.until)
}

// failed backs peer off.
func (c *Cluster) failed(peer string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.health == nil {
		c.health = make(map[string]*peerHealth)
	}
	h := c.health[peer]
	if h == nil {
		h = &peerHealth{backoff: c.backoff()}
		c.health[peer] = h
	}
	h.until = now.Add(h.backoff)
	h.backoff = min(2*h.backoff, maxBackoff)
}

// succeeded forgets peer's failures.
func (c *Cluster) succeeded(peer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.health, peer)
}

func (c *Cluster) hedgeDelay() time.Duration {
	if c.HedgeDelay > 0 {
		return c.HedgeDelay
	}
	return DefaultHedgeDelay
}

func (c *Cluster) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Cluster) backoff() time.Duration {
	if c.Backoff > 0 {
		return c.Backoff
	}
	return DefaultBackoff
}

func (c *Cluster) fallback(peer string, r Reason) {
	if c.Observer != nil {
		c.Observer.Fallback(peer, r)
	}
}

func (c *Cluster) sent(peer string) {
	if c.Observer != nil {
		c.Observer.Sent(peer)
	}
}
