package dispatch

import (
	"context"
	"math"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// NoLow is Answer.Low for an answer that depends on no evaluation still in
// progress.
const NoLow = math.MaxInt32

// Never is Answer.Until for an answer no expiring relationship influenced.
const Never = math.MaxInt64

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
}

// Answer is the result for one resource ID.
type Answer struct {
	Permissionship Permissionship
	// Missing names the caveat parameters of a Maybe answer.
	Missing []string
	// Low is the lowest evaluation frame still in progress that this answer
	// assumed a value for (a relationship cycle), NoLow when none, or -1
	// when it rests on a branch cut by a depth limit.
	Low int32
	// Until is when the earliest expiring relationship read for this answer
	// expires (unix nanoseconds); from then on the answer may be wrong.
	Until int64
}

// Shareable reports whether the answer holds for anyone asking the same
// question: it assumed nothing about an evaluation in progress (a grant
// found under such an assumption is still a grant, since every operator
// but exclusion is monotone and cycles through exclusions are rejected).
func (a Answer) Shareable() bool {
	return a.Low == NoLow || (a.Permissionship == Yes && a.Low >= 0)
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
