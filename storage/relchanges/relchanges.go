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
// Besides each relation's newest change it keeps, for a window of the most
// recent changes, which objects they touched: the resource of each changed
// relationship and its subject. A cached result that depends on one
// object's relationships (document:d's viewers, the datasets user:u
// reads) then serves across a write to the same relation of another
// object (UnchangedIn with a Scope naming the object). Past the window,
// or for a change too large to record object by object (an import), the
// answer falls back to the relation's.
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

// Scope is what a cached result depends on: the relationships of
// Type#Relation (an empty Relation: every relation of Type; an empty Type:
// everything), narrowed by ID, when it is set, to those of one object: the
// resource Type:ID when SubjectType is empty, else the subject
// SubjectType:ID (any subject relation). A forward query of one resource
// depends on the first kind, a reverse query from one subject on the
// second.
type Scope struct {
	Type, Relation, SubjectType, ID string
}

// objectWindow bounds the object scopes a Tracker remembers (each changed
// relationship records four: its resource and its subject, with its
// relation and with every relation). About 150 bytes each.
const objectWindow = 1 << 16

// scopeChange is one recorded object scope and the revision that changed it.
type scopeChange struct {
	scope Scope
	rev   storage.Revision
}

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
	// objects holds, per object scope (Scope with an ID), the newest
	// revision that changed it, for every change after objectsAfter;
	// recorded lists them oldest first, from recordedHead on, and bounds
	// them to objectWindow.
	objects      map[Scope]storage.Revision
	recorded     []scopeChange
	recordedHead int
	objectsAfter storage.Revision
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
	return t.UnchangedIn(from, to, Scope{Type: resourceType, Relation: rel})
}

// UnchangedIn is Unchanged for the relationships of scope s (without an
// ID, its relation; an empty Type, everything): with an ID it also reports
// true when the relation changed in between but not on that
// object, as long as the changes in between are within the window the
// tracker remembers objects for.
func (t *Tracker) UnchangedIn(from, to storage.Revision, s Scope) bool {
	if from == to {
		return true
	}
	if from > to {
		from, to = to, from
	}
	if s.Type == "" {
		s = Scope{} // everything
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.following || from < t.since || to > t.applied || t.schema > from {
		return false
	}
	if t.last[relation{s.Type, s.Relation}] <= from {
		return true
	}
	return s.ID != "" && from >= t.objectsAfter && t.objects[s] <= from
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
	t.forgetObjects(rev)
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
	t.recordObjects(ch)
	if ch.SchemaChanged {
		t.schema = ch.Revision
	}
	t.applied = ch.Revision
	t.wake()
	return nil
}

// recordObjects records the object scopes ch touched, forgetting the
// oldest records past objectWindow. A change with more relationships than
// the window holds is not recorded object by object: the records start
// over after it.
func (t *Tracker) recordObjects(ch storage.Change) {
	if len(ch.Relationships) == 0 {
		return
	}
	if 4*len(ch.Relationships) > objectWindow {
		t.forgetObjects(ch.Revision)
		return
	}
	for _, c := range ch.Relationships {
		r := &c.Relationship
		for _, s := range [4]Scope{
			{Type: r.Resource.Type, Relation: r.Relation, ID: r.Resource.ID},
			{Type: r.Resource.Type, ID: r.Resource.ID},
			{Type: r.Resource.Type, Relation: r.Relation, SubjectType: r.Subject.Object.Type, ID: r.Subject.Object.ID},
			{Type: r.Resource.Type, SubjectType: r.Subject.Object.Type, ID: r.Subject.Object.ID},
		} {
			t.objects[s] = ch.Revision
			t.recorded = append(t.recorded, scopeChange{s, ch.Revision})
		}
	}
	for len(t.recorded)-t.recordedHead > objectWindow {
		old := t.recorded[t.recordedHead]
		t.recorded[t.recordedHead] = scopeChange{}
		t.recordedHead++
		if t.objects[old.scope] == old.rev {
			delete(t.objects, old.scope)
		}
		// Changes up to old.rev may now be missing from objects.
		t.objectsAfter = max(t.objectsAfter, old.rev)
	}
	if t.recordedHead > objectWindow/4 {
		// Move the live records to the front so the slice stays bounded.
		n := copy(t.recorded, t.recorded[t.recordedHead:])
		clear(t.recorded[n:])
		t.recorded, t.recordedHead = t.recorded[:n], 0
	}
}

// forgetObjects drops every object record: from rev on, the changes of
// objects are recorded again.
func (t *Tracker) forgetObjects(rev storage.Revision) {
	t.objects = make(map[Scope]storage.Revision)
	t.recorded, t.recordedHead = nil, 0
	t.objectsAfter = rev
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
