package dispatch

import "math"

// Answer is the result for one resource ID.
type Answer struct {
	Permissionship Permissionship
	// Missing names the caveat parameters of a Maybe answer.
	Missing []string
	// Low is the lowest frame still open whose assumed value the answer
	// used, NoLow or CutLow; see Frame.
	Low Frame
	// Until is when the earliest expiring relationship read for this answer
	// expires (unix nanoseconds); from then on the answer may be wrong.
	Until int64
	// Remote marks an answer a peer computed (see Remote): the peer's
	// cache holds it, so this node's Cache does not store it again.
	Remote bool
}

// Never is Answer.Until for an answer no expiring relationship influenced.
const Never = math.MaxInt64

// Frame numbers an evaluation in progress. The evaluator of a request
// works depth first, one problem inside another; each problem it computes
// (rather than takes from its memo or from a resolver layer) opens a
// frame, numbered by how many frames are open outside it (0 is the
// outermost), and closes it when done. An answer's Low is a Frame: the
// lowest open frame whose assumed value it used, or one of two sentinels,
// NoLow (it used none) and CutLow (it rests on a branch cut by a depth
// limit).
//
// This is the rule for relationship cycles and for reusing answers. The
// evaluator (package check: recall, evaluate and settle, cutBranch,
// outcome.exact), Answer.Shareable, Cache and Singleflight follow it:
//
//   - Assume. A problem asked again while its frame f is open (a cycle
//     of relationships) is answered with the value currently assumed for
//     it, "no" at first, and with a Low of at most f. Lows combine by
//     minimum: an answer rests on everything its inputs rest on.
//   - Iterate. When frame f's evaluation used its own assumptions and an
//     answer differs from what was assumed for it, the frame is evaluated
//     again assuming its last answers, for a bounded number of rounds.
//     Whether a round used them is noted per frame as it happens: a Low
//     keeps only the lowest frame, so an answer resting on the
//     assumptions of f and of a frame outside it names only the outer
//     one. Starting from "no", this climbs to the
//     least fixed point, which is what a cycle of relationships means.
//   - Close. When frame f closes, an answer with Low f or above rested on
//     the frame's other answers, and so on whatever those rest on outside
//     it: its Low becomes the smallest Low below f among the frame's
//     answers (NoLow if none), and its Until the earliest Until among
//     them, since the values it assumed change when theirs may (an
//     assumed value carries no Until of its own in the first round).
//   - Exclusions. A cycle through the subtracted side of an exclusion
//     need not have a least fixed point, so the evaluator rejects it
//     (check.ErrCycleThroughExclusion): each frame notes how many
//     subtracted sides were being evaluated when it opened, and a cycle
//     back to a frame with another count crossed one. So every operator
//     a cycle passes through is monotone, and an assumed value is never
//     above the true one.
//   - Cut. Explain mode deepens iteratively, one pass per depth limit
//     from 1 up to the configured one; a pass below the configured limit
//     cuts the branches beyond its limit instead of failing. A cut
//     branch is assumed not to grant where it adds to the answer and to
//     grant where it subtracts from it, so a grant the pass finds is
//     real. Its Low is CutLow, below every frame: it survives every
//     minimum and every frame's close.
//   - Reuse. An answer may be memoized, cached, or handed to another
//     evaluation (Shareable) when its Low is NoLow, or when it is Yes and
//     its Low a frame: by the above, a grant found under assumed values
//     is a grant. Any other answer is used only where the evaluation that
//     computed it asked for it: it is neither memoized, cached nor shared.
type Frame int32

const (
	// NoLow is the Low of an answer that used no assumed value: it holds
	// for anyone asking the same question.
	NoLow Frame = math.MaxInt32
	// CutLow is the Low of an answer that rests on a branch cut by a depth
	// limit.
	CutLow Frame = -1
)

// RestsOn reports whether Low l is frame f or a frame opened inside it.
func (l Frame) RestsOn(f Frame) bool { return l >= f && l != NoLow }

// Shareable reports whether the answer holds for anyone asking the same
// question (see Frame, "Reuse").
func (a Answer) Shareable() bool {
	return a.Low == NoLow || (a.Permissionship == Yes && a.Low >= 0)
}
