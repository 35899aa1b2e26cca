package check

import (
	"errors"
	"sync"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/check/reach"
	"github.com/pembadb/pemba/schema"
)

// ancestorBudget bounds the objects of a lineage the reachability index
// may answer with (Reach.Ancestors); a larger one is walked.
const ancestorBudget = 1024

// fromAncestors answers permission perm of typ for ids from the
// reachability index's lineage of ids when the permission recurses over a
// parent relation (`permission view = viewer + parent->view`, see
// reach.Qualify): it evaluates the permission's other branches on ids and
// every ancestor as one batch, then combines them up each chain exactly
// as the walk combines its arrows level by level, so answers, untils and
// missing caveat parameters are the walk's. ok is false when the index
// declines, in explain mode (the walk builds the path through each
// arrow), and when the batch meets the depth limit, which the walk may
// not: then the permission is walked.
func (ev *evaluation) fromAncestors(typ, perm string, ids []string, depth int) (out []outcome, ok bool, err error) {
	if ev.eng.cfg.Reach == nil || ev.explain {
		return nil, false, nil
	}
	anc, ok := ev.eng.ancestries.get(ev.schema, typ, perm)
	if !ok {
		return nil, false, nil
	}
	lin, ok := ev.eng.cfg.Reach.Ancestors(ev.rev, typ, anc.Relation, ids, ev.nowNano, ancestorBudget)
	if !ok || depth+lin.Depth > ev.limit {
		return nil, false, nil
	}
	if err := ev.prefetch(typ, lin.IDs); err != nil {
		return nil, false, err
	}
	// The walk evaluates an ancestor's branches at its own depth, at most
	// the lineage's: evaluated there, none may meet the limit the walk
	// would not.
	base, err := ev.evalExpr(typ, lin.IDs, anc.Base, perm, depth+lin.Depth)
	if errors.Is(err, ErrMaxDepth) || errors.Is(err, ErrCycleThroughExclusion) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	all := combineLineage(lin, base, ev.newOutcomes(len(lin.IDs)))
	ev.memoAncestors(typ, perm, lin.IDs[len(ids):], all[len(ids):])
	return all[:len(ids)], true, nil
}

// combineLineage computes into out the permission of every object of lin
// from its base outcomes, parents first: an object's own base, and where that does
// not grant, the arrow over its parents as evalArrow and evalUnion
// combine it (a parent's answer under the relationship's until, merged
// where it may extend the answer).
func combineLineage(lin reach.Lineage, base, out []outcome) []outcome {
	done := make([]bool, len(lin.IDs))
	// Parents come after the objects that name them, except where an
	// object asked about is another's ancestor: resolve depth first.
	var resolve func(i int32) outcome
	resolve = func(i int32) outcome {
		if done[i] {
			return out[i]
		}
		o := noOutcome
		o.or(base[i])
		if o.perm != HasPermission {
			arrow := noOutcome
			for _, st := range lin.Up[i] {
				t := resolve(st.To)
				if !mayExtend(arrow, t) {
					continue
				}
				c := outcome{perm: HasPermission, low: dispatch.NoLow, until: st.Until}
				c.and(t)
				arrow.or(c)
			}
			o.or(arrow)
		}
		out[i], done[i] = o, true
		return o
	}
	for i := range lin.IDs {
		resolve(int32(i))
	}
	return out
}

// memoAncestors memoizes the exact answers of the ancestors, as the walk
// would have: a lookup asking about many objects under one folder tree
// answers the shared ancestors once.
func (ev *evaluation) memoAncestors(typ, perm string, ids []string, out []outcome) {
	for i, id := range ids {
		k := node{typ, id, perm}
		if _, busy := ev.progress[k]; busy || !out[i].exact() {
			continue
		}
		if ev.memo == nil {
			ev.memo = make(map[node]outcome)
		}
		ev.memo[k] = out[i]
	}
}

// ancestryCache memoizes reach.Qualify by schema and permission. The
// engine sees few schemas, so it is bounded by dropping everything past
// holdableEntries.
type ancestryCache struct {
	mu sync.Mutex // guards m
	m  map[ancestryKey]ancestry
}

type ancestryKey struct {
	s         *schema.Schema
	typ, perm string
}

type ancestry struct {
	reach.Ancestry
	ok bool
}

// get returns the ancestry of perm on typ under s.
func (c *ancestryCache) get(s *schema.Schema, typ, perm string) (reach.Ancestry, bool) {
	k := ancestryKey{s, typ, perm}
	c.mu.Lock()
	a, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return a.Ancestry, a.ok
	}
	a.Ancestry, a.ok = reach.Qualify(s, typ, perm)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= holdableEntries {
		c.m = make(map[ancestryKey]ancestry)
	}
	c.m[k] = a
	c.mu.Unlock()
	return a.Ancestry, a.ok
}
