package dispatch

import (
	"context"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Problem is one batched sub-problem: does Subject have Relation (a relation
// or permission) on each of ResourceIDs of ResourceType?
type Problem struct {
	Revision     storage.Revision
	ResourceType string
	Relation     string
	ResourceIDs  []string
	Subject      graph.SubjectRef
	// ContextHash identifies the request's caveat context (0: empty).
	ContextHash uint64
	// Now is the request's instant, unix nanoseconds.
	Now int64
	// Seq orders evaluations: a Singleflight waiter only waits for an older
	// (smaller Seq) evaluation, so waits can never form a cycle.
	Seq uint64
	// Depth is how many nested dispatches this problem is below the
	// request's own question (which is at depth 1); the innermost resolver
	// bounds it. It is not part of the Key: an answer does not depend on
	// the depth it was asked at, only whether it could be computed does.
	Depth int
	// Local marks a problem that must be evaluated on this node: one of
	// an evaluation a peer dispatched here (see Remote), or one the
	// evaluator finds cheaper here than anywhere (a relation, whose
	// relationships it has usually read already). It is not part of the
	// Key.
	Local bool
}

// Key identifies the answer for one resource ID of a Problem.
type Key struct {
	Revision     storage.Revision
	ResourceType string
	ResourceID   string
	Relation     string
	Subject      graph.SubjectRef
	ContextHash  uint64
}

// KeyOf returns the key of p's i-th resource ID.
func KeyOf(p *Problem, i int) Key {
	return Key{p.Revision, p.ResourceType, p.ResourceIDs[i], p.Relation, p.Subject, p.ContextHash}
}

// Resolver answers a Problem: it fills out[i] for p.ResourceIDs[i]
// (len(out) == len(p.ResourceIDs)).
type Resolver[S any] interface {
	Resolve(ctx context.Context, scope S, p *Problem, out []Answer) error
}

// subProblem returns a copy of p restricted to the IDs at idx.
func subProblem(p *Problem, idx []int) *Problem {
	q := *p
	q.ResourceIDs = make([]string, len(idx))
	for j, i := range idx {
		q.ResourceIDs[j] = p.ResourceIDs[i]
	}
	return &q
}
