package check

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
)

// ErrNotShareable is returned by ResolveDispatched for an answer that could not be
// handed to a peer; it does not happen with an evaluation of its own,
// whose answers are all exact, and is checked rather than assumed.
var ErrNotShareable = errors.New("answer rests on an evaluation in progress")

// ResolveDispatched answers a problem a peer dispatched to this node (see
// dispatch.Remote): in a new evaluation at snap, without caveat context,
// at p.Now and with p's Seq and Depth, through this engine's cache and
// singleflight, never dispatching further. cached is how many of its IDs
// the cache held. It validates p first (ValidateDispatched).
func (e *Engine) ResolveDispatched(ctx context.Context, snap Snapshot, p dispatch.Problem) (ans []dispatch.Answer, cached int, err error) {
	if err := ValidateDispatched(snap, &p, e.cfg.MaxDepth); err != nil {
		return nil, 0, err
	}
	ev, err := e.newEvaluation(ctx, snap, p.Subject, nil, time.Unix(0, p.Now))
	if err != nil {
		return nil, 0, err
	}
	defer e.release(ev)
	ev.seq, ev.local = p.Seq, true
	p.Local = true
	p.ContextHash = 0
	if e.cache != nil {
		cached = e.cache.Cached(&p)
	}
	ans = make([]dispatch.Answer, len(p.ResourceIDs))
	if err := e.top.Resolve(ctx, ev, &p, ans); err != nil {
		return nil, 0, fmt.Errorf("dispatched %s#%s@%s: %w", p.ResourceType, p.Relation, p.Subject.String(), err)
	}
	for i, a := range ans {
		if !a.Shareable() {
			return nil, 0, fmt.Errorf("dispatched %s:%s#%s: %w", p.ResourceType, p.ResourceIDs[i], p.Relation, ErrNotShareable)
		}
	}
	return ans, cached, nil
}

// ValidateDispatched checks a problem received from a peer against the
// schema at its revision and the engine's bounds; errors are
// RequestErrors naming the problem's field.
func ValidateDispatched(snap Snapshot, p *dispatch.Problem, maxDepth int) error {
	switch {
	case len(p.ResourceIDs) == 0:
		return &RequestError{Part: "resource_ids", Message: "empty"}
	case len(p.ResourceIDs) > dispatch.MaxDispatchIDs:
		return &RequestError{Part: "resource_ids", Message: fmt.Sprintf("%d IDs, more than the limit of %d (MaxDispatchIDs)", len(p.ResourceIDs), dispatch.MaxDispatchIDs)}
	case p.Depth < 1 || p.Depth > maxDepth:
		return &RequestError{Part: "depth", Message: fmt.Sprintf("%d, want 1 to the maximum depth %d", p.Depth, maxDepth)}
	case p.ContextHash != 0:
		return &RequestError{Part: "context", Message: "problems with a caveat context are not dispatched"}
	}
	seen := make(map[string]struct{}, len(p.ResourceIDs))
	for i, id := range p.ResourceIDs {
		if err := graph.ValidateObjectID(id, false); err != nil {
			return &RequestError{Part: fmt.Sprintf("resource_ids[%d]", i), Message: err.Error()}
		}
		if _, dup := seen[id]; dup {
			return &RequestError{Part: fmt.Sprintf("resource_ids[%d]", i), Message: fmt.Sprintf("%q given twice", id)}
		}
		seen[id] = struct{}{}
	}
	if err := graph.ValidateObjectID(p.Subject.Object.ID, true); err != nil {
		return &RequestError{Part: "subject.id", Message: err.Error()}
	}
	return validate(snap.Schema, graph.ObjectRef{Type: p.ResourceType, ID: p.ResourceIDs[0]}, p.Relation, p.Subject)
}
