// Package relchanges follows a datastore's change stream and records, for
// every relation, the newest revision that changed one of its
// relationships, so that a cache keyed by revision can serve a result read
// at one revision to a read at another when nothing the result depends on
// changed in between.
//
// Without it, every write makes the caches of the check engine cold: a
// read at the new head finds only entries of older revisions. With it, a
// write to document#viewer leaves the cached members of every group, the
// folder trees and the tiers servable at the new revision.
//
// The answers are exact or "no": Unchanged reports true only for
// revisions whose changes the Tracker has all applied (every revision
// after the one it started following at, up to the newest the stream
// delivered). A read at a revision the stream has not delivered yet, or
// older than where following began, is told "changed", and the caller
// reads as it would without the tracker. Several servers sharing one
// datastore each follow its stream, so a write through any of them is
// seen by all.
//
// A caller must:
//   - run Follow (or Start and Apply) to feed the tracker;
//   - ask Unchanged with the revision a cached result was read at, the
//     revision of the read that wants it, and the resource type and
//     relation the result depends on.
package relchanges

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/pembadb/pemba/storage"
)

// Source is what Follow reads: a datastore's head and change stream
// (storage.Engine has these methods).
type Source interface {
	HeadRevision(ctx context.Context) (storage.Revision, error)
	Watch(ctx context.Context, after storage.Revision) iter.Seq2[storage.Change, error]
}

// relation names one relation of a resource type; an empty Relation
// stands for every relation of Type, and an empty Type for every
// relation of every type.
type relation struct{ typ, rel string }

// Tracker records the newest revision that changed each relation. It is
// safe for concurrent use; the zero value answers "changed" to every
// question until Start.
type Tracker struct {
	mu sync.RWMutex // guards every field below
	// following: since and applied describe an unbroken run of the
	// change stream. Every change after since up to applied is recorded
	// in last and schema.
	following      bool
	since, applied storage.Revision
	// last holds, per relation (and per type, and for everything: see
	// relation), the newest revision that changed a relationship of it.
	// It is bounded by the relations of the schema.
	last map[relation]storage.Revision
	// schema is the newest revision that wrote a schema: it may change
	// the meaning of any relation.
	schema storage.Revision
	// moved is closed (and replaced) whenever applied or following
	// changes, waking Wait.
	moved chan struct{}
}

// wake wakes every Wait; it must be called with mu held.
func (t *Tracker) wake() {
	if t.moved != nil {
		close(t.moved)
	}
	t.moved = make(chan struct{})
}

// Wait returns once every change up to rev is applied, or with ctx's
// error.
func (t *Tracker) Wait(ctx context.Context, rev storage.Revision) error {
	for {
		t.mu.Lock()
		if t.following && t.applied >= rev {
			t.mu.Unlock()
			return nil
		}
		if t.moved == nil {
			t.moved = make(chan struct{})
		}
		moved := t.moved
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("relation changes: wait for revision %d: %w", rev, ctx.Err())
		case <-moved:
		}
	}
}

// Unchanged reports whether no relationship of resourceType#relation
// changed, and no schema was written, in the revisions between from and
// to (after the smaller, up to and including the larger). An empty
// relation asks about every relation of resourceType, an empty
// resourceType about everything. It reports false whenever it cannot
// tell: the stream has not delivered the larger revision yet, the
// smaller precedes the revision following began at, or the relation
// changed after the larger one (only each relation's newest change is
// kept; callers ask about recent revisions).
func (t *Tracker) Unchanged(from, to storage.Revision, resourceType, rel string) bool {
	if from == to {
		return true
	}
	if from > to {
		from, to = to, from
	}
	if resourceType == "" {
		rel = ""
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.following || from < t.since || to > t.applied || t.schema > from {
		return false
	}
	return t.last[relation{resourceType, rel}] <= from
}

// Applied returns the newest revision whose changes are all recorded,
// and false when the tracker is not following a stream.
func (t *Tracker) Applied() (storage.Revision, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.applied, t.following
}

// Start begins a run of the change stream after rev: the changes of
// every revision above rev must then be applied, in order. Whatever was
// recorded before answers for no revision below rev any more.
func (t *Tracker) Start(rev storage.Revision) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.following, t.since, t.applied = true, rev, rev
	if t.last == nil {
		t.last = make(map[relation]storage.Revision)
	}
	t.wake()
}

// Stop marks the run broken: nothing is unchanged until the next Start.
func (t *Tracker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.following = false
	t.wake()
}

// Apply records one committed change, which must be the next revision of
// the run (Watch yields every revision once, in order); an older one is
// ignored.
func (t *Tracker) Apply(ch storage.Change) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.following {
		return errors.New("relchanges: apply before start")
	}
	if ch.Revision <= t.applied {
		return nil
	}
	for _, c := range ch.Relationships {
		r := c.Relationship
		t.last[relation{r.Resource.Type, r.Relation}] = ch.Revision
		t.last[relation{r.Resource.Type, ""}] = ch.Revision
		t.last[relation{}] = ch.Revision
	}
	if ch.SchemaChanged {
		t.schema = ch.Revision
	}
	t.applied = ch.Revision
	t.wake()
	return nil
}

// Follow waits retryFirst after a failed stream before it starts again,
// doubling the wait up to retryMax while failures repeat.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 30 * time.Second
)

// Follow starts at src's head and applies its change stream until ctx
// ends. A stream that fails (behind the datastore's GC window, say) is
// started again at the head; meanwhile every question is answered
// "changed". Failures are passed to report (which may be nil).
func (t *Tracker) Follow(ctx context.Context, src Source, report func(error)) {
	wait := retryFirst
	for ctx.Err() == nil {
		start := time.Now()
		err := t.follow(ctx, src)
		t.Stop()
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > retryMax {
			wait = retryFirst
		}
		if report != nil && err != nil {
			report(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// follow runs the stream once, from the head, until it ends or fails.
func (t *Tracker) follow(ctx context.Context, src Source) error {
	head, err := src.HeadRevision(ctx)
	if err != nil {
		return fmt.Errorf("relation changes: head revision: %w", err)
	}
	t.Start(head)
	for ch, err := range src.Watch(ctx, head) {
		if err != nil {
			return fmt.Errorf("relation changes: watch after %d: %w", head, err)
		}
		if err := t.Apply(ch); err != nil {
			return err
		}
	}
	return nil
}
