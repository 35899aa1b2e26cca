package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pembadb/pemba/check/reach"
)

// followReach builds the reachability index and keeps it current from the
// datastore's change stream until Shutdown (see reach.Index.Follow). The
// index reads the datastore directly, not through the instrumented
// engine, so its full reads do not count as request latency.
func (s *Server) followReach() {
	s.reachDone = make(chan struct{})
	go func() {
		defer close(s.reachDone)
		s.reach.Follow(s.stopping, s.cfg.Engine, s.schemas.Compiled, func(err error) {
			if errors.Is(err, reach.ErrTooLarge) {
				err = fmt.Errorf("%w (--reach-index-max-bytes)", err)
			}
			s.log.Warn("reachability index: checks walk nested groups and folder trees until it is rebuilt", "err", err)
		})
	}()
}

// waitReach waits for the index's follower to end after Shutdown began,
// or for ctx.
func (s *Server) waitReach(ctx context.Context) {
	if s.reachDone == nil {
		return
	}
	select {
	case <-s.reachDone:
	case <-ctx.Done():
	}
}

// reachLag is how many revisions the reachability index trails the
// datastore's head: 0 once it has applied every write (or when the head
// cannot be read).
func (s *Server) reachLag() float64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	head, err := s.cfg.Engine.HeadRevision(ctx)
	if err != nil {
		return 0
	}
	if applied := s.reach.Stats().Revision; applied < head {
		return float64(head - applied)
	}
	return 0
}

// reachCollectors are the reachability index's metrics.
func (s *Server) reachCollectors() []prometheus.Collector {
	gauge := func(name, help string, get func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, get)
	}
	counter := func(name, help string, get func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, get)
	}
	return []prometheus.Collector{
		gauge("pemba_reach_index_bytes", "Estimated memory of the reachability index of nested subject-set relations.",
			func() float64 { return float64(s.reach.Stats().Bytes) }),
		gauge("pemba_reach_index_entries", "Flattened memberships held by the reachability index (object or subject to object).",
			func() float64 { return float64(s.reach.Stats().Entries) }),
		gauge("pemba_reach_index_relationships", "Relationships of indexed relations held by the reachability index.",
			func() float64 { return float64(s.reach.Stats().Edges) }),
		gauge("pemba_reach_index_revision", "Newest revision the reachability index has applied.",
			func() float64 { return float64(s.reach.Stats().Revision) }),
		gauge("pemba_reach_index_lag", "Revisions the reachability index trails the datastore head (0: caught up); checks walk what it has not applied.",
			s.reachLag),
		gauge("pemba_reach_index_build_seconds", "Duration of the reachability index's last full build.",
			func() float64 { return s.reach.Stats().LastBuild.Seconds() }),
		counter("pemba_reach_index_builds_total", "Full builds of the reachability index (start, schema changes, stream failures).",
			func() float64 { return float64(s.reach.Stats().Builds) }),
		counter("pemba_reach_index_hits_total", "Nested memberships the reachability index answered.",
			func() float64 { return float64(s.reach.Stats().Hits) }),
		counter("pemba_reach_index_declines_total", "Nested memberships the reachability index left to the walk (revision not held, expired chain).",
			func() float64 { return float64(s.reach.Stats().Declines) }),
		gauge("pemba_reach_index_parent_relationships", "Relationships of parent relations (folder trees, and team trees kept inverted) held by the reachability index; a relation kept both ways counts twice.",
			func() float64 { return float64(s.reach.Stats().ParentEdges) }),
		counter("pemba_reach_index_ancestor_hits_total", "Permissions recursive over a parent relation the reachability index answered with the objects' ancestors.",
			func() float64 { return float64(s.reach.Stats().AncestorHits) }),
		counter("pemba_reach_index_ancestor_declines_total", "Permissions recursive over a parent relation the reachability index left to the walk (revision not held, cycle, over 1024 ancestors).",
			func() float64 { return float64(s.reach.Stats().AncestorDeclines) }),
	}
}
