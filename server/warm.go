package server

import (
	"context"
	"sync"
	"time"

	"github.com/pembadb/pemba/storage"
)

// Warming the shared subject sets (check.Engine.WarmSets): the sets many
// lookups intersect with, such as everyone cleared for a tier, computed
// whole before lookups ask for them. The server warms them at start,
// before it reports ready (Config.WarmSetsWait), and again after each
// import that committed relationships: a bulk load changes the teams
// below a tier's clearance, the sets warmed before no longer serve the
// new revisions, and every lookup would otherwise evaluate them narrowed
// until a background computation caught up (BENCHMARKS.md, "Shared sets
// warmed again after an import"). Sets an import left unchanged are
// found in the cache, so warming again after a small import costs
// little.

// setWarmer runs one warming at a time and lets Shutdown wait for it: a
// warming reads the datastore, which its owner closes after Shutdown.
type setWarmer struct {
	mu sync.Mutex // guards the fields below
	// running: a warming runs; again: it runs once more when it ends
	// (an import ended meanwhile); closed: Shutdown began, none starts.
	running, again, closed bool
	done                   sync.WaitGroup
}

// warm warms the shared sets at the head revision, in this goroutine, or
// has the warming under way run once more, after waiting as long as it
// took; why names the occasion in the log ("start" or "import"). It does
// nothing once Shutdown has begun.
func (s *Server) warm(why string) {
	w := &s.warmer
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if w.running {
		w.again = true
		w.mu.Unlock()
		return
	}
	w.running = true
	w.done.Add(1)
	w.mu.Unlock()
	defer w.done.Done()
	for {
		start := time.Now()
		s.warmSets(why)
		w.mu.Lock()
		if !w.again || w.closed {
			w.running, w.again = false, false
			w.mu.Unlock()
			return
		}
		w.again, why = false, "import"
		w.mu.Unlock()
		// Paced: a stream of small imports keeps warming at most half
		// of one core busy, however the sets below them change.
		select {
		case <-s.stopping.Done():
		case <-time.After(time.Since(start)):
		}
	}
}

// warmAfterImport is the writer's OnImported: it warms the shared sets
// again, in the background, when warming is enabled.
func (s *Server) warmAfterImport(int, storage.Revision) {
	if s.cfg.WarmSetsWait > 0 {
		go s.warm("import")
	}
}

// warming reports whether a warming runs (the pemba_set_warming gauge).
func (s *Server) warming() bool {
	s.warmer.mu.Lock()
	defer s.warmer.mu.Unlock()
	return s.warmer.running
}

// waitWarming stops new warmings and waits, until ctx ends, for the one
// under way (Shutdown has cancelled its context).
func (s *Server) waitWarming(ctx context.Context) {
	w := &s.warmer
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		w.done.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// warmSets computes the shared subject sets at the head revision, for
// at most Config.WarmSetsWait, and logs what it did. A datastore without
// a schema yet has nothing to warm; a failure only leaves lookups to
// compute the sets as they would have.
func (s *Server) warmSets(why string) {
	ctx, cancel := context.WithTimeout(s.stopping, s.cfg.WarmSetsWait)
	defer cancel()
	start := time.Now()
	rev, err := s.engine.HeadRevision(ctx)
	if err != nil {
		s.log.Warn("warming subject sets: no head revision", "err", err, "after", why)
		return
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		s.log.Info("warming subject sets: nothing to warm", "reason", err, "after", why)
		return
	}
	n, err := s.checker.WarmSets(ctx, snap)
	attrs := []any{"sets", n, "duration", time.Since(start).Round(time.Millisecond), "after", why}
	if err != nil {
		s.log.Warn("warming subject sets stopped", append(attrs, "err", err)...)
		return
	}
	s.log.Info("warmed subject sets", attrs...)
}
