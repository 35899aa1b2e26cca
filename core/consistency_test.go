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

// slowHead is an engine whose next head read, once armed, reads the head
// and then holds its answer until released: a read under way that began
// before a later write committed.
type slowHead struct {
	storage.Engine
	armed            atomic.Bool
	started, release chan struct{}
}

func (s *slowHead) HeadRevision(ctx context.Context) (storage.Revision, error) {
	rev, err := s.Engine.HeadRevision(ctx)
	if s.armed.CompareAndSwap(true, false) {
		close(s.started)
		<-s.release
	}
	return rev, err
}

// TestHeadReadBeginsAfterTheRequest: a request that arrives while a head
// read is under way (one that began before the request's own write
// committed) is answered at or after that write — never from the stale
// read, which would let a fully_consistent check miss a revoke — and an
// at_least_as_fresh zookie for the write is not refused.
func TestHeadReadBeginsAfterTheRequest(t *testing.T) {
	for _, c := range []struct {
		name string
		c    func(*Revisions, storage.Revision) Consistency
	}{
		{"fully_consistent", func(*Revisions, storage.Revision) Consistency { return Consistency{Mode: FullyConsistent} }},
		{"at_least_as_fresh", func(r *Revisions, rev storage.Revision) Consistency {
			return Consistency{Mode: AtLeastAsFresh, Zookie: unnoted(r, rev)}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			engine, err := pebble.Open(pebble.Options{InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { engine.Close() })
			slow := &slowHead{Engine: engine, started: make(chan struct{}), release: make(chan struct{})}
			revs := NewRevisions(slow, NewZookies("test"), time.Hour)
			ctx := context.Background()
			if _, err := revs.Resolve(ctx, Consistency{}, consistencyField); err != nil { // caches the head for the quantum
				t.Fatal(err)
			}
			slow.armed.Store(true)
			go revs.Head(ctx) // a head read under way, as a concurrent write's schema read makes
			<-slow.started
			rev, err := engine.Write(ctx, storage.WriteRequest{Mutations: []storage.Mutation{{Op: storage.OpTouch,
				Relationship: graph.MustParseRelationship("doc:d#viewer@user:u")}}})
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				rev storage.Revision
				err error
			}
			done := make(chan result)
			go func() {
				got, err := revs.Resolve(ctx, c.c(revs, rev), consistencyField)
				done <- result{got, err}
			}()
			time.Sleep(50 * time.Millisecond) // let Resolve meet the read under way (ordering only; nothing is timed)
			close(slow.release)
			if got := <-done; got.err != nil || got.rev < rev {
				t.Fatalf("resolved at %d, %v; want >= %d, the write's revision", got.rev, got.err, rev)
			}
		})
	}
}

// TestHeadReadsShared: callers that arrive while a head read is under way
// share one read after it, however many they are.
func TestHeadReadsShared(t *testing.T) {
	var g headReads
	var reads atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	read := func() (storage.Revision, error) {
		if reads.Add(1) == 1 {
			close(started)
			<-release
		}
		return storage.Revision(reads.Load()), nil
	}
	go g.do(context.Background(), read)
	<-started
	const callers = 20
	got := make(chan storage.Revision, callers)
	for range callers {
		go func() {
			rev, err := g.do(context.Background(), read)
			if err != nil {
				t.Error(err)
			}
			got <- rev
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the callers queue (ordering only; nothing is timed)
	close(release)
	for range callers {
		if rev := <-got; rev < 2 {
			t.Errorf("a caller was answered by read %d, which began before it asked", rev)
		}
	}
	if n := reads.Load(); n > 3 {
		t.Errorf("%d callers arriving during one read made %d reads after it; want them to share", callers, n-1)
	}
	// A caller whose context ends stops waiting; the read goes on.
	hold := make(chan struct{})
	defer close(hold)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.do(ctx, func() (storage.Revision, error) { <-hold; return 1, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled caller got %v, want context.Canceled", err)
	}
}
