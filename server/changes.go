package server

import "context"

// followChanges records which relations each revision changes, from the
// datastore's change stream, until Shutdown (see relchanges.Tracker), so
// the check engine's caches serve results across writes to other
// relations. Like the index, it reads the datastore directly.
func (s *Server) followChanges() {
	s.changesDone = make(chan struct{})
	go func() {
		defer close(s.changesDone)
		s.changes.Follow(s.stopping, s.cfg.Engine, func(err error) {
			s.log.Warn("change stream: cached results serve their own revision only until it resumes", "err", err)
		})
	}()
}

// waitChanges waits for the change follower to end after Shutdown began,
// or for ctx.
func (s *Server) waitChanges(ctx context.Context) {
	if s.changesDone == nil {
		return
	}
	select {
	case <-s.changesDone:
	case <-ctx.Done():
	}
}
