package check

import (
	"context"
	"fmt"
	"maps"
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
	rev       storage.Revision
	now       time.Time
	nowNano   int64
	caveatCtx map[string]any
	ctxHash   uint64
	seq       uint64
	subject   graph.SubjectRef
	explain   bool

	limit  int  // depth limit for this pass
	cutoff bool // explain mode: some branch was cut at limit

	// memo holds exact outcomes; key: (type, id, relation) for subject.
	memo map[node]outcome
	// progress holds the problems being evaluated, with the frame that
	// evaluates them and the value currently assumed for them.
	progress map[node]progressMark
	// frames holds, per frame, the number of exclusions whose subtracted
	// side was entered when the frame began: a cycle back to a frame with
	// a different count passes through an exclusion.
	frames []int32
	neg    int32

	closures map[node]*closure // key: (type, "", relation)
	// rows holds the complete relationships of prefetched objects.
	rows map[graph.ObjectRef][]graph.Relationship
}

type node struct{ typ, id, rel string }

// progressMark is a problem being evaluated: the frame evaluating it and
// the value assumed for it meanwhile (see dispatch.Frame, "Assume").
type progressMark struct {
	frame   dispatch.Frame
	assumed outcome
}

func (ev *evaluation) reset() {
	ev.memo, ev.progress, ev.frames, ev.neg, ev.cutoff = nil, nil, nil, 0, false
	ev.closures, ev.rows = nil, nil
}

func (ev *evaluation) opts() storage.QueryOptions { return storage.QueryOptions{Now: ev.now} }

// checkBatch answers relation (a relation or permission of typ) for each of
// ids; ids must be distinct. It answers what it can from the memo and the
// problems in progress, then cuts or resolves the rest, ChunkSize IDs per
// dispatched problem, memoizing the exact answers.
func (ev *evaluation) checkBatch(typ, rel string, ids []string, depth int) ([]outcome, error) {
	out := make([]outcome, len(ids))
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

// resolve sends a problem through the engine's resolver layers, or, in
// explain mode (paths are not cached), straight to local evaluation.
func (ev *evaluation) resolve(typ, rel string, ids []string, depth int) ([]outcome, error) {
	if ev.explain || ev.eng.top == nil {
		return ev.evaluate(typ, rel, ids, depth)
	}
	p := dispatch.Problem{
		Revision: ev.rev, ResourceType: typ, Relation: rel, ResourceIDs: ids,
		Subject: ev.subject, ContextHash: ev.ctxHash, Now: ev.nowNano, Seq: ev.seq, Depth: depth,
	}
	ans := make([]dispatch.Answer, len(ids))
	if err := ev.eng.top.Resolve(ev.ctx, ev, &p, ans); err != nil {
		return nil, err
	}
	out := make([]outcome, len(ids))
	for i, a := range ans {
		out[i] = fromAnswer(a)
	}
	return out, nil
}

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
	if err := ev.ctx.Err(); err != nil {
		return nil, err
	}
	f := ev.openFrame(typ, rel, ids)
	defer ev.closeFrame(f, typ, rel, ids)
	for round := 0; ; round++ {
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
	ev.frames = ev.frames[:f]
}

// unstable reports whether frame f must be evaluated again: some answer of
// this round rests on the frame itself, and some differs from the value
// assumed for it.
func (ev *evaluation) unstable(f dispatch.Frame, typ, rel string, ids []string, out []outcome) bool {
	selfDependent, changed := false, false
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
// dependencies outside it (see dispatch.Frame, "Close").
func settle(f dispatch.Frame, out []outcome) {
	outside := dispatch.NoLow
	for i := range out {
		if out[i].low < f {
			outside = min(outside, out[i].low)
		}
	}
	for i := range out {
		if out[i].low.RestsOn(f) {
			out[i].low = outside
		}
	}
}

func (ev *evaluation) evaluateOnce(typ, rel string, ids []string, depth int) ([]outcome, error) {
	def := ev.schema.Definitions[typ]
	if def == nil {
		return noOutcomes(len(ids)), nil
	}
	if p := def.Permissions[rel]; p != nil {
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
	return noOutcomes(len(ids)), nil
}

func noOutcomes(n int) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i] = noOutcome
	}
	return out
}

func pick(ids []string, idx []int) []string {
	s := make([]string, len(idx))
	for j, i := range idx {
		s[j] = ids[i]
	}
	return s
}

// evalExpr evaluates a permission expression for each of ids; perm names
// the permission (for paths).
func (ev *evaluation) evalExpr(typ string, ids []string, x schema.Expr, perm string, depth int) ([]outcome, error) {
	switch x := x.(type) {
	case *schema.RelationRef:
		return ev.checkBatch(typ, x.Name, ids, depth+1)
	case *schema.Nil:
		return noOutcomes(len(ids)), nil
	case *schema.Arrow:
		return ev.evalArrow(typ, ids, x, perm, depth)
	case *schema.Union:
		return ev.evalUnion(typ, ids, x, perm, depth)
	case *schema.Intersection:
		return ev.evalIntersection(typ, ids, x, perm, depth)
	case *schema.Exclusion:
		return ev.evalExclusion(typ, ids, x, perm, depth)
	}
	return nil, fmt.Errorf("%w: unknown expression %T", ErrInvalidRequest, x)
}

// evalUnion evaluates the children in order, each for the IDs no earlier
// child granted: a grant decides a union, so the batch shrinks as it goes.
func (ev *evaluation) evalUnion(typ string, ids []string, x *schema.Union, perm string, depth int) ([]outcome, error) {
	out := noOutcomes(len(ids))
	open := make([]int, len(ids))
	for i := range open {
		open[i] = i
	}
	for _, c := range x.Children {
		if len(open) == 0 {
			break
		}
		res, err := ev.evalExpr(typ, pick(ids, open), c, perm, depth)
		if err != nil {
			return nil, err
		}
		next := open[:0]
		for j, i := range open {
			out[i].or(res[j])
			if out[i].perm != HasPermission {
				next = append(next, i)
			}
		}
		open = next
	}
	return out, nil
}

// evalIntersection evaluates the first child for every ID and each later
// child for the IDs no earlier child refused: a refusal decides an
// intersection.
func (ev *evaluation) evalIntersection(typ string, ids []string, x *schema.Intersection, perm string, depth int) ([]outcome, error) {
	if len(x.Children) == 0 {
		return nil, nil
	}
	out, err := ev.evalExpr(typ, ids, x.Children[0], perm, depth)
	if err != nil {
		return nil, err
	}
	open := granting(out)
	for _, c := range x.Children[1:] {
		if len(open) == 0 {
			break
		}
		res, err := ev.evalExpr(typ, pick(ids, open), c, perm, depth)
		if err != nil {
			return nil, err
		}
		next := open[:0]
		for j, i := range open {
			out[i].and(res[j])
			if out[i].perm != NoPermission {
				next = append(next, i)
			}
		}
		open = next
	}
	return out, nil
}

// evalExclusion evaluates the base for every ID and the subtracted side
// for the IDs the base grants, conditionally or not: a refusal of the base
// decides an exclusion. The subtracted side is evaluated with ev.neg
// raised, which the cycle check and the explain-mode depth cut read (see
// dispatch.Frame, "Exclusions" and "Cut").
func (ev *evaluation) evalExclusion(typ string, ids []string, x *schema.Exclusion, perm string, depth int) ([]outcome, error) {
	out, err := ev.evalExpr(typ, ids, x.Base, perm, depth)
	if err != nil {
		return nil, err
	}
	open := granting(out)
	if len(open) == 0 {
		return out, nil
	}
	ev.neg++
	res, err := ev.evalExpr(typ, pick(ids, open), x.Subtracted, perm, depth)
	ev.neg--
	if err != nil {
		return nil, err
	}
	for j, i := range open {
		out[i].minus(res[j])
	}
	return out, nil
}

// granting returns the indexes of the outcomes that grant, conditionally
// or not.
func granting(out []outcome) []int {
	var idx []int
	for i := range out {
		if out[i].perm != NoPermission {
			idx = append(idx, i)
		}
	}
	return idx
}

// indexOf maps resource IDs of a batch to their positions.
type indexOf struct {
	ids []string
	m   map[string]int
}

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

// edge is a relationship from a batch resource (at index i) to an object
// whose relation must then be checked.
type edge struct {
	i   int
	rel graph.Relationship
}

// checkTargets checks rel on every subject object of edges, returning the
// outcome per edge (aligned with edges). Objects are deduplicated and
// checked as one batch per type.
func (ev *evaluation) checkTargets(edges []edge, rel string, depth int) ([]outcome, error) {
	res := make([]outcome, len(edges))
	done := make([]bool, len(edges))
	for k := range edges {
		if done[k] {
			continue
		}
		t := edges[k].rel.Subject.Object.Type
		// Gather the distinct objects of type t from edge k on.
		var ids []string
		var at []int             // pairs: edge index, position in ids
		var index map[string]int // for many objects; a scan is cheaper for few
		for j := k; j < len(edges); j++ {
			o := edges[j].rel.Subject.Object
			if done[j] || o.Type != t {
				continue
			}
			pos := -1
			if index != nil {
				if p, ok := index[o.ID]; ok {
					pos = p
				}
			} else {
				pos = slices.Index(ids, o.ID)
			}
			if pos < 0 {
				pos = len(ids)
				ids = append(ids, o.ID)
				if index != nil {
					index[o.ID] = pos
				} else if len(ids) > 16 {
					index = make(map[string]int, len(edges))
					for i, id := range ids {
						index[id] = i
					}
				}
			}
			at = append(at, j, pos)
		}
		def := ev.schema.Definitions[t]
		var out []outcome
		if def == nil || (def.Relations[rel] == nil && def.Permissions[rel] == nil) {
			out = noOutcomes(len(ids))
		} else {
			var err error
			if out, err = ev.checkBatch(t, rel, ids, depth+1); err != nil {
				return nil, err
			}
		}
		for i := 0; i < len(at); i += 2 {
			res[at[i]] = out[at[i+1]]
			done[at[i]] = true
		}
	}
	return res, nil
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

func (ev *evaluation) evalArrow(typ string, ids []string, a *schema.Arrow, perm string, depth int) ([]outcome, error) {
	ix := newIndex(ids)
	var edges []edge
	err := ev.read(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: a.Tupleset}, func(r graph.Relationship) {
		if i := ix.find(r.Resource.ID); i >= 0 {
			edges = append(edges, edge{i, r})
		}
	})
	if err != nil {
		return nil, err
	}
	out := noOutcomes(len(ids))
	if len(edges) == 0 {
		return out, nil
	}
	res, err := ev.checkTargets(edges, a.Target, depth)
	if err != nil {
		return nil, err
	}
	via := a.Tupleset + "->" + a.Target
	if a.Func == schema.ArrowAll {
		via = a.Tupleset + ".all(" + a.Target + ")"
	}
	// mk returns the edge's caveat outcome and the target's outcome with
	// the arrow step on its path.
	mk := func(ed *edge, t outcome) (outcome, outcome, error) {
		c, err := ev.caveat(&ed.rel)
		if err != nil {
			return outcome{}, t, err
		}
		if ev.explain && t.path != nil {
			t.path = &pathNode{obj: graph.ObjectRef{Type: typ, ID: ids[ed.i]}, rel: perm, via: via, rship: &ed.rel, next: t.path}
		}
		return c, t, nil
	}
	if a.Func == schema.ArrowAny {
		for k := range edges {
			ed := &edges[k]
			if out[ed.i].perm == HasPermission {
				continue
			}
			c, t, err := mk(ed, res[k])
			if err != nil {
				return nil, err
			}
			c.and(t)
			out[ed.i].or(c)
		}
		return out, nil
	}
	// .all: at least one related object, and every related object grants;
	// a caveated relationship contributes its caveat AND the object's
	// answer (as SpiceDB's intersection arrows do).
	seen := make([]bool, len(ids))
	for i := range out {
		out[i].perm = HasPermission
	}
	for k := range edges {
		ed := &edges[k]
		c, t, err := mk(ed, res[k])
		if err != nil {
			return nil, err
		}
		c.and(t)
		seen[ed.i] = true
		out[ed.i].and(c)
	}
	for i := range out {
		if !seen[i] {
			out[i] = noOutcome
		}
	}
	return out, nil
}

// caveat decides a relationship's caveat for this request; relationships
// without one are unconditionally present. The outcome carries the
// relationship's expiration.
func (ev *evaluation) caveat(r *graph.Relationship) (outcome, error) {
	o := outcome{perm: HasPermission, low: dispatch.NoLow, until: dispatch.Never}
	if r.Expiration != nil {
		o.until = r.Expiration.UnixNano()
	}
	if r.Caveat == nil {
		return o, nil
	}
	c := ev.schema.Caveats[r.Caveat.Name]
	if c == nil {
		return o, fmt.Errorf("relationship %s:%s#%s: caveat %q is not defined in the schema", r.Resource.Type, r.Resource.ID, r.Relation, r.Caveat.Name)
	}
	ctx := ev.caveatCtx
	if len(r.Caveat.Context) > 0 {
		ctx = make(map[string]any, len(ev.caveatCtx)+len(r.Caveat.Context))
		maps.Copy(ctx, ev.caveatCtx)
		maps.Copy(ctx, r.Caveat.Context) // the relationship's values win
	}
	res, err := c.Evaluate(ctx)
	if err != nil {
		if cerr := ev.requestCaveatError(c, r); cerr != nil {
			return o, &ContextError{Err: cerr}
		}
		return o, fmt.Errorf("relationship %s:%s#%s: %w", r.Resource.Type, r.Resource.ID, r.Relation, err)
	}
	switch {
	case !res.Decided():
		o.perm = Conditional
		o.missing = slices.Sorted(slices.Values(res.Missing))
	case !res.Satisfied:
		o.perm = NoPermission
	}
	return o, nil
}

// requestCaveatError tells whose values made caveat c fail on r: it
// evaluates c with the request's values alone (those r does not
// override, the others unknown) and returns that error, or nil when the
// request supplies none of c's parameters or its values evaluate. Only a
// failed evaluation pays for it.
func (ev *evaluation) requestCaveatError(c *schema.Caveat, r *graph.Relationship) error {
	var own map[string]any
	for _, p := range c.Params {
		v, ok := ev.caveatCtx[p.Name]
		if !ok {
			continue
		}
		if _, overridden := r.Caveat.Context[p.Name]; overridden {
			continue
		}
		if own == nil {
			own = make(map[string]any, len(c.Params))
		}
		own[p.Name] = v
	}
	if own == nil {
		return nil
	}
	_, err := c.Evaluate(own)
	return err
}

// evalRelation answers relation r of typ for each of ids. A subject set
// has itself (identity); a recursive relation is answered from the
// subject's reverse closure when it has one; otherwise r holds through a
// relationship naming the subject (direct) or a subject set that has it
// (viaSubjectSets).
func (ev *evaluation) evalRelation(typ string, ids []string, r *schema.Relation, depth int) ([]outcome, error) {
	out := noOutcomes(len(ids))
	open := ev.identity(typ, ids, r.Name, out)
	cl, err := ev.closureFor(typ, r)
	if err != nil {
		return nil, err
	}
	if cl != nil {
		return ev.fromClosure(cl, typ, r.Name, ids, out, depth)
	}
	ix := newIndex(ids)
	if open > 0 {
		if err := ev.direct(typ, ids, r, ix, out); err != nil {
			return nil, err
		}
	}
	if err := ev.viaSubjectSets(typ, ids, r, ix, depth, out); err != nil {
		return nil, err
	}
	return out, nil
}

// identity grants the IDs that are the subject itself when the subject is
// a set of this very relation (group:eng#member has group:eng#member), and
// returns how many IDs it left undecided.
func (ev *evaluation) identity(typ string, ids []string, rel string, out []outcome) int {
	s := ev.subject
	open := len(ids)
	if s.Relation != rel || s.Object.Type != typ {
		return open
	}
	for i, id := range ids {
		if id == s.Object.ID {
			out[i].perm = HasPermission
			open--
			if ev.explain {
				out[i].path = &pathNode{obj: s.Object, rel: rel}
			}
		}
	}
	return open
}

// direct grants, as their caveats allow, through the relationships of r on
// ids that name the subject itself, or a wildcard of its type where r
// allows one. It reads them from prefetched rows when those are complete.
func (ev *evaluation) direct(typ string, ids []string, r *schema.Relation, ix indexOf, out []outcome) error {
	s := ev.subject
	wild := s.Relation == "" && s.Object.ID != graph.Wildcard && allowsWildcard(r, s.Object.Type)
	var cerr error
	grant := func(rel graph.Relationship) {
		i := ix.find(rel.Resource.ID)
		if i < 0 || cerr != nil {
			return
		}
		c, err := ev.caveat(&rel)
		if err != nil {
			cerr = err
			return
		}
		if ev.explain && c.perm != NoPermission {
			rel := rel
			c.path = &pathNode{obj: rel.Resource, rel: r.Name, rship: &rel}
		}
		out[i].or(c)
	}
	if ev.prefetched(typ, ids, r.Name, func(rel graph.Relationship) {
		sub := rel.Subject
		if sub.Object.Type == s.Object.Type && sub.Relation == s.Relation &&
			(sub.Object.ID == s.Object.ID || (wild && sub.Object.ID == graph.Wildcard)) {
			grant(rel)
		}
	}) {
		return cerr
	}
	subjectIDs := []string{s.Object.ID}
	if wild {
		subjectIDs = append(subjectIDs, graph.Wildcard)
	}
	srel := s.Relation
	if err := ev.query(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: r.Name,
		Subject: &storage.SubjectFilter{Type: s.Object.Type, IDs: subjectIDs, Relation: &srel}}, grant); err != nil {
		return err
	}
	return cerr
}

// viaSubjectSets grants through the relationships of r whose subject is a
// subject set: once per distinct `type#relation` r allows, for the IDs not
// granted yet, and stopping when all are.
func (ev *evaluation) viaSubjectSets(typ string, ids []string, r *schema.Relation, ix indexOf, depth int, out []outcome) error {
	for k, a := range r.Allowed {
		if a.Relation == "" || slices.ContainsFunc(r.Allowed[:k], func(b schema.AllowedSubject) bool {
			return b.Type == a.Type && b.Relation == a.Relation
		}) {
			continue
		}
		var open []string
		for i, id := range ids {
			if out[i].perm != HasPermission {
				open = append(open, id)
			}
		}
		if len(open) == 0 {
			break
		}
		if err := ev.viaSubjectSet(typ, open, r, a.Type, a.Relation, ix, depth, out); err != nil {
			return err
		}
	}
	return nil
}

// viaSubjectSet grants the IDs in open through their relationships of r to
// subject sets setType#setRel: it checks setRel on every set object as one
// batch per type, and a relationship grants as its caveat and its set's
// answer both allow.
func (ev *evaluation) viaSubjectSet(typ string, open []string, r *schema.Relation, setType, setRel string, ix indexOf, depth int, out []outcome) error {
	var edges []edge
	err := ev.read(storage.Filter{ResourceType: typ, ResourceIDs: open, Relation: r.Name,
		Subject: &storage.SubjectFilter{Type: setType, Relation: &setRel}}, func(rel graph.Relationship) {
		if i := ix.find(rel.Resource.ID); i >= 0 {
			edges = append(edges, edge{i, rel})
		}
	})
	if err != nil {
		return err
	}
	if len(edges) == 0 {
		return nil
	}
	res, err := ev.checkTargets(edges, setRel, depth)
	if err != nil {
		return err
	}
	for k := range edges {
		ed := &edges[k]
		if out[ed.i].perm == HasPermission {
			continue
		}
		t := res[k]
		c, err := ev.caveat(&ed.rel)
		if err != nil {
			return err
		}
		c.and(t)
		if ev.explain && c.perm != NoPermission {
			c.path = &pathNode{obj: ed.rel.Resource, rel: r.Name, rship: &ed.rel, next: t.path}
		}
		out[ed.i].or(c)
	}
	return nil
}

func allowsWildcard(r *schema.Relation, typ string) bool {
	for _, a := range r.Allowed {
		if a.Wildcard && a.Type == typ {
			return true
		}
	}
	return false
}
