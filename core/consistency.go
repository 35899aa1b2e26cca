package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

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

	// fetch shares one HeadRevision call among concurrent refreshers.
	fetch singleflight.Group

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

// Head reads the datastore's head revision and refreshes the cache with it.
func (r *Revisions) Head(ctx context.Context) (storage.Revision, error) {
	v, err, _ := r.fetch.Do("head", func() (any, error) {
		// Shared by every waiting request: one caller leaving must not
		// fail the others, so the read has its own bound.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		rev, err := r.engine.HeadRevision(ctx)
		if err != nil {
			return storage.Revision(0), fmt.Errorf("read head revision: %w", err)
		}
		r.mu.Lock()
		if rev > r.cached {
			r.cached = rev
		}
		r.fetchedAt = time.Now()
		r.mu.Unlock()
		r.noteCommitted(rev)
		return rev, nil
	})
	return v.(storage.Revision), err
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
		if rev, err = r.Head(ctx); err != nil {
			return 0, err
		}
		if rev >= want {
			return want, nil
		}
		// The shared head read may have started before the zookie's write
		// committed; only a read that starts now may refuse the zookie.
		if rev, err = r.engine.HeadRevision(ctx); err != nil {
			return 0, fmt.Errorf("read head revision: %w", err)
		}
		if rev >= want {
			r.noteCommitted(rev)
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
