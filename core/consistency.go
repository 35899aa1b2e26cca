package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pembadb/pemba/storage"
)

// Mode is how fresh a read must be.
type Mode int

const (
	// MinimizeLatency reads at a recent revision shared by the requests of
	// one quantum (the zero Consistency).
	MinimizeLatency Mode = iota
	// AtLeastAsFresh reads at a revision no older than the zookie's.
	AtLeastAsFresh
	// AtExactSnapshot reads at the zookie's revision.
	AtExactSnapshot
	// FullyConsistent reads at the datastore's head.
	FullyConsistent
)

// Consistency is a request's freshness requirement: a Mode and, for
// AtLeastAsFresh and AtExactSnapshot, the zookie it names.
type Consistency struct {
	Mode   Mode
	Zookie string
}

// NewRevisions resolves consistency over engine, minting zookies with
// zookies and reusing a head revision for quantum under MinimizeLatency.
func NewRevisions(engine storage.Engine, zookies Zookies, quantum time.Duration) *Revisions {
	return &Revisions{engine: engine, zookies: zookies, quantum: quantum}
}

// Revisions turns a request's Consistency into a revision.
//
// minimize_latency reads at a cached head revision refreshed at most once
// per quantum: requests in the same quantum share a revision, so they
// share the check engine's cache (keyed by revision). The other modes are
// exact: fully_consistent asks the datastore for its head, at_least_as_fresh
// takes the cached head when it is new enough and otherwise the zookie's
// own revision once it is known to be committed (so the requests carrying
// one zookie share a revision, and with it the caches), at_exact_snapshot
// takes the zookie's revision.
type Revisions struct {
	engine  storage.Engine
	zookies Zookies
	quantum time.Duration

	// mu guards cached and fetchedAt: the head revision last read and
	// when it was read.
	mu        sync.Mutex
	cached    storage.Revision
	fetchedAt time.Time

	// heads shares HeadRevision calls among concurrent callers, each of
	// whom is answered by a call that began after it asked.
	heads headReads

	// committed is the newest revision known to be committed: the newest
	// head read and every revision a zookie was issued for.
	committed atomic.Uint64
}

// noteCommitted records that rev is committed.
func (r *Revisions) noteCommitted(rev storage.Revision) {
	for {
		cur := r.committed.Load()
		if uint64(rev) <= cur || r.committed.CompareAndSwap(cur, uint64(rev)) {
			return
		}
	}
}

// Head returns the datastore's head revision, read after Head was
// called, and refreshes the cache with it: every write committed before
// the call is at or below it. Concurrent callers share reads.
func (r *Revisions) Head(ctx context.Context) (storage.Revision, error) {
	return r.heads.do(ctx, r.readHead)
}

// readHead reads the head and records it; shared by every caller waiting
// for it, so one caller leaving must not fail the others: the read has
// its own bound.
func (r *Revisions) readHead() (storage.Revision, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, err := r.engine.HeadRevision(ctx)
	if err != nil {
		return 0, fmt.Errorf("read head revision: %w", err)
	}
	r.mu.Lock()
	if rev > r.cached {
		r.cached = rev
	}
	r.fetchedAt = time.Now()
	r.mu.Unlock()
	r.noteCommitted(rev)
	return rev, nil
}

// headReads shares head reads among concurrent callers, but a caller
// joins only a read that has not begun yet: a read already under way may
// have begun before the caller's own write committed, and answering a
// fully_consistent request from it would miss that write (or revoke).
// At most one read runs at a time and at most one waits to run next;
// every caller that arrives while a read runs shares the next one.
type headReads struct {
	mu      sync.Mutex
	running *headRead // the read under way, nil when none is
	next    *headRead // the read that begins when running ends
}

// headRead is one shared read: done is closed once rev and err are set.
type headRead struct {
	done chan struct{}
	rev  storage.Revision
	err  error
}

// do returns the result of a read that begins after do was called, or
// ctx's error if ctx ends first (the read itself goes on for the others).
// Every call must pass the same read: a caller may be answered by the
// read another caller passed.
func (g *headReads) do(ctx context.Context, read func() (storage.Revision, error)) (storage.Revision, error) {
	g.mu.Lock()
	c := g.next
	switch {
	case c != nil:
	case g.running != nil:
		c = &headRead{done: make(chan struct{})}
		g.next = c
	default:
		c = &headRead{done: make(chan struct{})}
		g.running = c
		go g.run(c, read)
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.rev, c.err
	case <-ctx.Done():
		return 0, fmt.Errorf("read head revision: %w", ctx.Err())
	}
}

// run performs c's read, then begins the read queued behind it.
func (g *headReads) run(c *headRead, read func() (storage.Revision, error)) {
	for c != nil {
		c.rev, c.err = read()
		g.mu.Lock()
		next := g.next
		g.running, g.next = next, nil
		g.mu.Unlock()
		close(c.done)
		c = next
	}
}

// Advance moves the cached head to rev if it is newer. Schema writes call
// it, so minimize_latency reads never see a schema older than one this
// server wrote (relationship writes do not: their readers opt into
// staleness, and keeping one revision per quantum keeps the cache warm).
func (r *Revisions) Advance(rev storage.Revision) {
	r.mu.Lock()
	if rev > r.cached {
		r.cached = rev
	}
	r.mu.Unlock()
}

// quantized returns the cached head, refreshing it when older than the
// quantum.
func (r *Revisions) quantized(ctx context.Context) (storage.Revision, error) {
	r.mu.Lock()
	rev, fresh := r.cached, !r.fetchedAt.IsZero() && time.Since(r.fetchedAt) < r.quantum
	r.mu.Unlock()
	if fresh {
		return rev, nil
	}
	return r.Head(ctx)
}

// Lag is how many revisions the cached head trails the true head.
func (r *Revisions) Lag(ctx context.Context) float64 {
	h, err := r.engine.HeadRevision(ctx)
	if err != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if h < r.cached {
		return 0
	}
	return float64(h - r.cached)
}

// Resolve returns the revision c asks for; field is where c sits in the
// request, and errors about its zookie name field's child
// (at_least_as_fresh or at_exact_snapshot).
func (r *Revisions) Resolve(ctx context.Context, c Consistency, field Path) (storage.Revision, error) {
	switch c.Mode {
	case MinimizeLatency:
		return r.quantized(ctx)
	case FullyConsistent:
		return r.Head(ctx)
	case AtLeastAsFresh:
		at := field.Child("at_least_as_fresh")
		want, err := r.DecodeZookie(c.Zookie, at)
		if err != nil {
			return 0, err
		}
		rev, err := r.quantized(ctx)
		if err != nil || rev >= want {
			return rev, err
		}
		if want <= storage.Revision(r.committed.Load()) {
			return want, nil
		}
		// The head read begins after this request arrived, so it covers
		// every write whose zookie the request could carry.
		if rev, err = r.Head(ctx); err != nil {
			return 0, err
		}
		if rev >= want {
			return want, nil
		}
		return 0, Invalid(at, fmt.Errorf("revision %d: %w", want, storage.ErrRevisionUnknown))
	case AtExactSnapshot:
		return r.DecodeZookie(c.Zookie, field.Child("at_exact_snapshot"))
	}
	return 0, Invalid(field, fmt.Errorf("unknown consistency requirement %d", c.Mode))
}

// DecodeZookie returns the revision token names; a malformed or foreign
// token is a FieldError naming field.
func (r *Revisions) DecodeZookie(token string, field Path) (storage.Revision, error) {
	rev, err := r.zookies.Decode(token)
	if err != nil {
		return 0, Invalid(field, err)
	}
	return rev, nil
}

// Zookie returns the zookie for rev, a committed revision: a server issues
// zookies only for its writes and for revisions it read at.
func (r *Revisions) Zookie(rev storage.Revision) string {
	r.noteCommitted(rev)
	return r.zookies.Encode(rev)
}

// Zookies is the codec of the datastore's zookies and cursors.
func (r *Revisions) Zookies() Zookies { return r.zookies }
