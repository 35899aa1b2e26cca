package core

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// newRevisions resolves over a fresh in-memory engine (behind a head-read
// counter) with a long quantum.
func newRevisions(t *testing.T) (*Revisions, *headCounter, func() storage.Revision) {
	t.Helper()
	engine, err := pebble.Open(pebble.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	heads := &headCounter{Engine: engine}
	write := func() storage.Revision {
		rev, err := engine.Write(context.Background(), storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch,
			Relationship: graph.MustParseRelationship(fmt.Sprintf("doc:d%d#viewer@user:u", time.Now().UnixNano()))}}})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	return NewRevisions(heads, NewZookies("test"), time.Hour), heads, write
}

// headCounter counts HeadRevision calls.
type headCounter struct {
	storage.Engine
	calls atomic.Int64
}

func (h *headCounter) HeadRevision(ctx context.Context) (storage.Revision, error) {
	h.calls.Add(1)
	return h.Engine.HeadRevision(ctx)
}

// unnoted encodes a zookie for rev as another server would: unlike
// Revisions.Zookie, it does not record that rev is committed.
func unnoted(r *Revisions, rev storage.Revision) string { return r.Zookies().Encode(rev) }

var consistencyField = Field("consistency")

func TestResolveConsistency(t *testing.T) {
	revs, _, write := newRevisions(t)
	ctx := context.Background()
	r1 := write()
	quantized, err := revs.Resolve(ctx, Consistency{}, consistencyField)
	if err != nil || quantized != r1 {
		t.Fatalf("first minimize_latency read: %d, %v; want %d", quantized, err, r1)
	}
	r2 := write()
	for _, c := range []struct {
		name string
		c    Consistency
		want storage.Revision
	}{
		{"minimize_latency keeps the quantized head", Consistency{Mode: MinimizeLatency}, r1},
		{"at_least_as_fresh an older zookie takes the cached head", Consistency{Mode: AtLeastAsFresh, Zookie: revs.Zookie(r1 - 1)}, r1},
		{"at_least_as_fresh a newer zookie reads at its own revision", Consistency{Mode: AtLeastAsFresh, Zookie: unnoted(revs, r2)}, r2},
		{"at_exact_snapshot", Consistency{Mode: AtExactSnapshot, Zookie: revs.Zookie(r1 - 1)}, r1 - 1},
		{"fully_consistent", Consistency{Mode: FullyConsistent}, r2},
	} {
		got, err := revs.Resolve(ctx, c.c, consistencyField)
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
	_, err = revs.Resolve(ctx, Consistency{Mode: AtLeastAsFresh, Zookie: unnoted(revs, r2+10)}, consistencyField)
	var fe *FieldError
	if !errors.Is(err, storage.ErrRevisionUnknown) || !errors.As(err, &fe) || fe.Path.String() != "consistency.at_least_as_fresh" {
		t.Errorf("at_least_as_fresh beyond the head: %v, want ErrRevisionUnknown naming consistency.at_least_as_fresh", err)
	}
	_, err = revs.Resolve(ctx, Consistency{Mode: AtExactSnapshot, Zookie: "nope"}, consistencyField)
	if !errors.Is(err, ErrMalformedZookie) || !errors.Is(err, ErrInvalidInput) || err.Error() != "consistency.at_exact_snapshot: malformed zookie: too short" {
		t.Errorf("malformed zookie: %v", err)
	}
}

// TestAtLeastAsFreshOwnZookie: a zookie this server issued names a
// committed revision, which at_least_as_fresh reads at without asking the
// datastore for its head.
func TestAtLeastAsFreshOwnZookie(t *testing.T) {
	revs, heads, write := newRevisions(t)
	ctx := context.Background()
	if _, err := revs.Resolve(ctx, Consistency{}, consistencyField); err != nil { // caches the head for the quantum
		t.Fatal(err)
	}
	rev := write()
	z := revs.Zookie(rev) // as a write answers
	before := heads.calls.Load()
	got, err := revs.Resolve(ctx, Consistency{Mode: AtLeastAsFresh, Zookie: z}, consistencyField)
	if err != nil || got != rev {
		t.Fatalf("at_least_as_fresh this server's own zookie: %d, %v; want %d", got, err, rev)
	}
	if n := heads.calls.Load() - before; n != 0 {
		t.Errorf("resolving this server's own zookie read the head %d times, want 0", n)
	}
	// Another server's zookie for the same revision needs a head read.
	revs.committed.Store(0)
	if got, err := revs.Resolve(ctx, Consistency{Mode: AtLeastAsFresh, Zookie: unnoted(revs, rev)}, consistencyField); err != nil || got != rev {
		t.Fatalf("at_least_as_fresh another server's zookie: %d, %v; want %d", got, err, rev)
	}
	if heads.calls.Load() == before {
		t.Errorf("another server's zookie was accepted without reading the head")
	}
}

// TestAtLeastAsFreshAfterStaleSharedHead: a request carrying a write's
// zookie may join a shared head read that began before the write
// committed; it must still be answered at or after the write, never
// refused as an unknown revision.
func TestAtLeastAsFreshAfterStaleSharedHead(t *testing.T) {
	revs, _, write := newRevisions(t)
	ctx := context.Background()
	stale, err := revs.Resolve(ctx, Consistency{}, consistencyField) // caches the head for the quantum
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	go revs.fetch.Do("head", func() (any, error) { // a head read already in flight
		close(started)
		<-release
		return stale, nil
	})
	<-started
	rev := write()
	type result struct {
		rev storage.Revision
		err error
	}
	done := make(chan result)
	go func() {
		got, err := revs.Resolve(ctx, Consistency{Mode: AtLeastAsFresh, Zookie: unnoted(revs, rev)}, consistencyField)
		done <- result{got, err}
	}()
	time.Sleep(50 * time.Millisecond) // let Resolve join the in-flight read (ordering only; nothing is timed)
	close(release)
	if got := <-done; got.err != nil || got.rev < rev {
		t.Fatalf("at_least_as_fresh its own write's zookie: %d, %v; want >= %d", got.rev, got.err, rev)
	}
}
