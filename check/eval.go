package check

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// evaluation is the state of evaluating questions about one subject within
// one request. It is used by one goroutine at a time: evaluation is
// sequential, so a stack of frames detects relationship cycles and a memo
// answers repeated sub-problems (the shared sub-problems of a BulkCheck or
// a Lookup are computed once).
type evaluation struct {
	eng       *Engine
	ctx       context.Context
	schema    *schema.Schema
	reader    storage.Reader
	raw       storage.Reader // the snapshot's reader, without the read cache
	rev       storage.Revision
	now       time.Time
	nowNano   int64
	caveatCtx map[string]any
	ctxHash   uint64
	seq       uint64
	subject   graph.SubjectRef
	explain   bool
	// local marks an evaluation a peer dispatched here: its problems are
	// never dispatched again (dispatch.Problem.Local).
	local bool

	limit  int  // depth limit for this pass
	cutoff bool // explain mode: some branch was cut at limit

	// The frames, the memo and the values assumed for problems in
	// progress follow the rule stated on dispatch.Frame.
	//
	// memo holds exact outcomes; key: (type, id, relation) for subject.
	memo map[node]outcome
	// progress holds the problems being evaluated, with the frame that
	// evaluates them and the value currently assumed for them.
	progress map[node]progressMark
	// frames holds, per open frame, the value of neg when it opened.
	frames []int32
	// consulted holds, per open frame, whether the frame's current round
	// used a value assumed for one of its problems. An answer's Low keeps
	// only the lowest frame it rests on, so an answer resting on two
	// frames' assumptions says nothing of the inner one: the flag does.
	consulted []bool
	// neg counts the subtracted sides of exclusions being evaluated.
	neg int32

	closures map[node]*closure // key: (type, "", relation)
	// holders memoizes directHolders; key: (type, "", relation).
	holders map[node]holderSet
	// facts, when set, answers what reverse walks from the subject
	// proved (see walkFacts).
	facts *walkFacts
	// holdable is what the subject can hold at all, looked up on first use.
	holdable holdable
	// rows holds the complete relationships of prefetched objects.
	rows map[graph.ObjectRef][]graph.Relationship
	// outs is the slab the evaluation's small outcome slices are carved
	// from (see newOutcomes); it is kept with the evaluation for the next.
	outs []outcome
}

// node is one question of an evaluation: relation rel of object typ:id
// (id empty in a closure's key).
type node struct{ typ, id, rel string }

// progressMark is a problem being evaluated: the frame evaluating it and
// the value assumed for it meanwhile (see dispatch.Frame, "Assume").
type progressMark struct {
	frame   dispatch.Frame
	assumed outcome
}

// reset drops what the evaluation learned, for a first explain pass.
func (ev *evaluation) reset() {
	ev.memo = nil
	ev.closures, ev.rows, ev.holders = nil, nil, nil
	ev.deepen()
}

// deepen readies the evaluation for the next explain pass, at a larger
// depth limit. It keeps the memo: an exact answer rests on no branch the
// last limit cut, so a larger limit cannot change it, and its path is
// still a proof.
func (ev *evaluation) deepen() {
	ev.progress, ev.frames, ev.consulted, ev.neg, ev.cutoff = nil, nil, nil, 0, false
}

// opts are the storage options of the evaluation's queries.
func (ev *evaluation) opts() storage.QueryOptions { return storage.QueryOptions{Now: ev.now} }

// checkBatch answers relation (a relation or permission of typ) for each of
// ids; ids must be distinct. It answers what it can from the memo and the
// problems in progress, then cuts or resolves the rest, ChunkSize IDs per
// dispatched problem, memoizing the exact answers.
func (ev *evaluation) checkBatch(typ, rel string, ids []string, depth int) ([]outcome, error) {
	if !ev.canHold(typ, rel) {
		return ev.noOutcomes(len(ids)), nil
	}
	if ev.facts != nil {
		return ev.checkWithFacts(typ, rel, ids, depth)
	}
	return ev.checkHoldable(typ, rel, ids, depth)
}

// checkHoldable is checkBatch for a relation the subject can hold.
func (ev *evaluation) checkHoldable(typ, rel string, ids []string, depth int) ([]outcome, error) {
	// A recursive relation or permission the subject's reverse closure
	// answers needs no dispatch: its answers are exact. A permission whose
	// grant lies beyond the configured depth limit is left to the forward
	// walk, which reports where the limit was met; beyond an explain
	// pass's lower limit, the closure cuts it (its chains are the
	// shortest, so walking forward would find no grant within the limit
	// either).
	cl, err := ev.closureFor(typ, rel)
	if err != nil {
		return nil, err
	}
	if cl != nil && cl.filterOnly {
		return ev.membersForward(cl, typ, rel, ids, depth)
	}
	if cl != nil && ((ev.explain && ev.limit < ev.eng.cfg.MaxDepth) || !cl.tooDeep(ids, depth, ev.limit)) {
		return ev.fromClosure(cl, typ, rel, ids, ev.noOutcomes(len(ids)), depth)
	}
	return ev.forward(typ, rel, ids, depth)
}

// membersForward answers an explain pass's check of a permission whose
// reverse closure is known (see closure.filterOnly): the objects outside
// it do not have the permission at any depth, now or later (expirations
// only remove), and the members are walked forward, which builds their
// paths through each arrow. Checking an agent against the hundreds of
// teams cleared for a tier thus walks the few teams its principal is in.
func (ev *evaluation) membersForward(cl *closure, typ, rel string, ids []string, depth int) ([]outcome, error) {
	out := ev.noOutcomes(len(ids))
	var members []string
	var at []int
	for i, id := range ids {
		if _, _, ok := cl.member(id); ok {
			members, at = append(members, id), append(at, i)
		}
	}
	if len(members) == 0 {
		return out, nil
	}
	res, err := ev.forward(typ, rel, members, depth)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		out[i] = res[j]
	}
	return out, nil
}

// forward answers checkBatch by memoized answers and dispatch.
func (ev *evaluation) forward(typ, rel string, ids []string, depth int) ([]outcome, error) {
	out := ev.newOutcomes(len(ids))
	pending, err := ev.recall(typ, rel, ids, out, make([]int, 0, len(ids)))
	if err != nil {
		return nil, err
	}
	if len(pending) == 0 {
		return out, nil
	}
	if depth > ev.limit {
		cut, ok := ev.cutBranch()
		if !ok {
			return nil, fmt.Errorf("%w (%d) at %s:%s#%s", ErrMaxDepth, ev.eng.cfg.MaxDepth, typ, ids[pending[0]], rel)
		}
		for _, i := range pending {
			out[i] = outcome{perm: cut, low: dispatch.CutLow, until: dispatch.Never}
		}
		return out, nil
	}
	if err := ev.resolvePending(typ, rel, ids, pending, depth, out); err != nil {
		return nil, err
	}
	return out, nil
}

// recall fills out[i] for the ids the evaluation already has an answer
// for: a memoized one, or the value assumed for a problem in progress (see
// dispatch.Frame, "Assume" and "Exclusions"). It appends the indexes of
// the others to pending and returns it.
func (ev *evaluation) recall(typ, rel string, ids []string, out []outcome, pending []int) ([]int, error) {
	for i, id := range ids {
		n := node{typ, id, rel}
		if o, ok := ev.memo[n]; ok {
			out[i] = o
			continue
		}
		if pm, ok := ev.progress[n]; ok {
			if ev.frames[pm.frame] != ev.neg {
				return nil, fmt.Errorf("%w at %s:%s#%s", ErrCycleThroughExclusion, typ, id, rel)
			}
			o := pm.assumed
			o.low = min(o.low, pm.frame)
			out[i] = o
			ev.consulted[pm.frame] = true
			continue
		}
		pending = append(pending, i)
	}
	return pending, nil
}

// cutBranch reports whether a branch beyond this pass's depth limit may be
// cut instead of failing with ErrMaxDepth (explain mode, below the
// configured limit), and the value a cut branch is assumed to have (see
// dispatch.Frame, "Cut"). It records that the pass cut a branch.
func (ev *evaluation) cutBranch() (Permissionship, bool) {
	if !ev.explain || ev.limit >= ev.eng.cfg.MaxDepth {
		return NoPermission, false
	}
	ev.cutoff = true
	if ev.neg%2 == 1 {
		return HasPermission, true
	}
	return NoPermission, true
}

// resolvePending resolves the ids at pending, ChunkSize per problem,
// placing the answers in out and memoizing the exact ones.
func (ev *evaluation) resolvePending(typ, rel string, ids []string, pending []int, depth int, out []outcome) error {
	chunk := ev.eng.cfg.ChunkSize
	for start := 0; start < len(pending); start += chunk {
		part := pending[start:min(start+chunk, len(pending))]
		pids := ids
		if len(part) != len(ids) {
			pids = pick(ids, part)
		}
		res, err := ev.resolve(typ, rel, pids, depth)
		if err != nil {
			return err
		}
		for j, i := range part {
			out[i] = res[j]
			if res[j].exact() {
				if ev.memo == nil {
					ev.memo = make(map[node]outcome)
				}
				ev.memo[node{typ, ids[i], rel}] = res[j]
			}
		}
	}
	return nil
}

// resolve sends a problem through the engine's resolver layers, or
// straight to local evaluation: in explain mode (paths are not cached),
// and for a relation whose objects' rows are all prefetched (see
// prefetchedRelation).
func (ev *evaluation) resolve(typ, rel string, ids []string, depth int) ([]outcome, error) {
	if ev.explain || ev.eng.top == nil || ev.prefetchedRelation(typ, rel, ids) {
		return ev.evaluate(typ, rel, ids, depth)
	}
	p := dispatch.Problem{
		Revision: ev.rev, ResourceType: typ, Relation: rel, ResourceIDs: ids,
		Subject: ev.subject, ContextHash: ev.ctxHash, Now: ev.nowNano, Seq: ev.seq, Depth: depth,
		Local: ev.local || (ev.eng.cfg.Cluster != nil && !ev.isPermission(typ, rel)),
	}
	ans := make([]dispatch.Answer, len(ids))
	if err := ev.eng.top.Resolve(ev.ctx, ev, &p, ans); err != nil {
		return nil, err
	}
	out := ev.newOutcomes(len(ids))
	for i, a := range ans {
		out[i] = fromAnswer(a)
	}
	return out, nil
}

// prefetchedRelation reports whether rel is a relation of typ (not a
// permission) and every one of ids has its rows prefetched. Such a
// problem is evaluated in place, without the resolver layers: its
// evaluation reads rows already in memory, and whatever it needs beyond
// them (the subject sets its relationships name) is dispatched as its own
// problems, which the layers do cache and share. Caching it would cost
// more than computing it: a hash, a lock and a store per object, for an
// answer keyed by one subject that random checks rarely ask again.
func (ev *evaluation) prefetchedRelation(typ, rel string, ids []string) bool {
	if ev.rows == nil {
		return false
	}
	def := ev.schema.Definitions[typ]
	if def == nil || def.Relations[rel] == nil {
		return false
	}
	var small [16][]graph.Relationship
	_, ok := ev.prefetchedRows(typ, ids, small[:0])
	return ok
}

// isPermission reports whether rel is a permission of typ. A relation's
// problem is never dispatched to a peer (dispatch.Problem.Local): its
// evaluation reads the object's relationships, which the evaluation of
// the permission that asked for it has usually prefetched, so here it
// costs no query, and on its owner it would cost one and a round trip.
func (ev *evaluation) isPermission(typ, rel string) bool {
	def := ev.schema.Definitions[typ]
	return def != nil && def.Permissions[rel] != nil
}

// traceEvaluate, when set (by tests only), is told of every evaluated
// problem: the engine's dispatch tree.
var traceEvaluate func(depth int, typ, rel string, ids []string)

// local is the innermost resolver: it evaluates a problem, at the problem's
// depth, in the scope of the evaluation that dispatched it.
type local struct{}

// Resolve evaluates p in ev.
func (local) Resolve(_ context.Context, ev *evaluation, p *dispatch.Problem, out []dispatch.Answer) error {
	res, err := ev.evaluate(p.ResourceType, p.Relation, p.ResourceIDs, p.Depth)
	if err != nil {
		return err
	}
	for i, o := range res {
		out[i] = o.answer()
	}
	return nil
}

// evaluate computes the problem in a new frame, evaluating it again while
// its answers rest on the frame's own assumptions and change (see
// dispatch.Frame, "Iterate" and "Close").
func (ev *evaluation) evaluate(typ, rel string, ids []string, depth int) ([]outcome, error) {
	ev.eng.dispatches.Add(1)
	if traceEvaluate != nil {
		traceEvaluate(depth, typ, rel, ids)
	}
	if err := ev.ctx.Err(); err != nil {
		return nil, err
	}
	f := ev.openFrame(typ, rel, ids)
	defer ev.closeFrame(f, typ, rel, ids)
	for round := 0; ; round++ {
		ev.consulted[f] = false
		out, err := ev.evaluateOnce(typ, rel, ids, depth)
		if err != nil {
			return nil, err
		}
		if !ev.unstable(f, typ, rel, ids, out) || round > 2*len(ids)+2 {
			settle(f, out)
			return out, nil
		}
		for i, id := range ids {
			ev.progress[node{typ, id, rel}] = progressMark{frame: f, assumed: out[i]}
		}
	}
}

// openFrame opens a frame for the problem and marks its IDs in progress,
// assumed not to have the relation.
func (ev *evaluation) openFrame(typ, rel string, ids []string) dispatch.Frame {
	f := dispatch.Frame(len(ev.frames))
	ev.frames = append(ev.frames, ev.neg)
	ev.consulted = append(ev.consulted, false)
	if ev.progress == nil {
		ev.progress = make(map[node]progressMark)
	}
	for _, id := range ids {
		ev.progress[node{typ, id, rel}] = progressMark{frame: f, assumed: noOutcome}
	}
	return f
}

// closeFrame closes frame f, which openFrame opened for the problem.
func (ev *evaluation) closeFrame(f dispatch.Frame, typ, rel string, ids []string) {
	for _, id := range ids {
		delete(ev.progress, node{typ, id, rel})
	}
	ev.frames, ev.consulted = ev.frames[:f], ev.consulted[:f]
}

// unstable reports whether frame f must be evaluated again: this round
// used a value assumed for one of the frame's problems (consulted, or an
// answer whose Low is the frame), and some answer differs from the value
// assumed for it.
func (ev *evaluation) unstable(f dispatch.Frame, typ, rel string, ids []string, out []outcome) bool {
	selfDependent, changed := ev.consulted[f], false
	for i, id := range ids {
		if out[i].low == f {
			selfDependent = true
		}
		if a := ev.progress[node{typ, id, rel}].assumed; a.perm != out[i].perm || !slices.Equal(a.missing, out[i].missing) {
			changed = true
		}
	}
	return selfDependent && changed
}

// settle gives the answers of frame f that rest on it the frame's
// dependencies outside it, and its earliest until (see dispatch.Frame,
// "Close").
func settle(f dispatch.Frame, out []outcome) {
	outside, until := dispatch.NoLow, int64(dispatch.Never)
	for i := range out {
		if out[i].low < f {
			outside = min(outside, out[i].low)
		}
		until = min(until, out[i].until)
	}
	for i := range out {
		if out[i].low.RestsOn(f) {
			out[i].low = outside
			out[i].until = min(out[i].until, until)
		}
	}
}

// evaluateOnce computes one round of a frame: a permission's expression
// (the objects' rows prefetched first), with the permission's own step
// on each path, or a relation. A type or name the schema does not define
// grants nothing.
func (ev *evaluation) evaluateOnce(typ, rel string, ids []string, depth int) ([]outcome, error) {
	def := ev.schema.Definitions[typ]
	if def == nil {
		return ev.noOutcomes(len(ids)), nil
	}
	if p := def.Permissions[rel]; p != nil {
		if out, ok, err := ev.fromAncestors(typ, rel, ids, depth); ok || err != nil {
			return out, err
		}
		if err := ev.prefetch(typ, ids); err != nil {
			return nil, err
		}
		out, err := ev.evalExpr(typ, ids, p.Expr, rel, depth)
		if err != nil {
			return nil, err
		}
		if ev.explain {
			for i := range out {
				pn := out[i].path
				if pn != nil && !(pn.rel == rel && pn.obj.ID == ids[i] && pn.obj.Type == typ) {
					out[i].path = &pathNode{obj: graph.ObjectRef{Type: typ, ID: ids[i]}, rel: rel, next: pn}
				}
			}
		}
		return out, nil
	}
	if r := def.Relations[rel]; r != nil {
		return ev.evalRelation(typ, ids, r, depth)
	}
	return ev.noOutcomes(len(ids)), nil
}

// outcomeSlab is how many outcomes an evaluation allocates at a time to
// carve its small outcome slices from: a check makes dozens of them, one
// per batch and step, and allocating each would be most of what the
// garbage collector then has to reclaim.
const outcomeSlab = 512

// newOutcomes returns n zero outcomes, carved from the evaluation's slab
// when n is small. They live as long as the evaluation: release clears
// the slab for the next one, so no slice of it may outlive the request.
func (ev *evaluation) newOutcomes(n int) []outcome {
	if n > outcomeSlab/8 {
		return make([]outcome, n)
	}
	if cap(ev.outs)-len(ev.outs) < n {
		ev.outs = make([]outcome, 0, outcomeSlab)
	}
	i := len(ev.outs)
	ev.outs = ev.outs[:i+n]
	return ev.outs[i : i+n : i+n]
}

// noOutcomes is newOutcomes filled with plain "no" outcomes.
func (ev *evaluation) noOutcomes(n int) []outcome {
	out := ev.newOutcomes(n)
	for i := range out {
		out[i] = noOutcome
	}
	return out
}

// noOutcomes returns n plain "no" outcomes.
func noOutcomes(n int) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i] = noOutcome
	}
	return out
}

// pick returns the ids at the indexes idx.
func pick(ids []string, idx []int) []string {
	s := make([]string, len(idx))
	for j, i := range idx {
		s[j] = ids[i]
	}
	return s
}

// indexOf maps resource IDs of a batch to their positions.
type indexOf struct {
	ids []string
	m   map[string]int
}

// newIndex indexes ids; it keeps a map only for more than a few.
func newIndex(ids []string) indexOf {
	ix := indexOf{ids: ids}
	if len(ids) > 8 {
		ix.m = make(map[string]int, len(ids))
		for i, id := range ids {
			ix.m[id] = i
		}
	}
	return ix
}

// find returns the position of id, or -1.
func (ix indexOf) find(id string) int {
	if ix.m != nil {
		if i, ok := ix.m[id]; ok {
			return i
		}
		return -1
	}
	for i, x := range ix.ids {
		if x == id {
			return i
		}
	}
	return -1
}

// query reads the relationships of f, calling fn for each.
func (ev *evaluation) query(f storage.Filter, fn func(graph.Relationship)) error {
	ev.eng.queries.Add(1)
	for r, err := range ev.reader.QueryRelationships(ev.ctx, f, ev.opts()) {
		if err != nil {
			return fmt.Errorf("query %s#%s: %w", f.ResourceType, f.Relation, err)
		}
		fn(r)
	}
	return nil
}
