package check

import (
	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/schema"
)

// walkFacts is what complete reverse walks from an evaluation's subject
// proved, for the checks that follow them in the same request: a
// LookupResources page confirms its candidates knowing which groups,
// projects and teams the subject holds a relation on, and which it holds
// none on, instead of working each out again from their relationships.
//
// A walk covers every node on its paths (see covers): it reached every
// object on which the subject may hold such a node, so
//   - an object it reached definitely (state 2) is a grant, which holds
//     until the earliest expiration on the path that proved it;
//   - an object it did not reach is a plain "no", now and later: a walk
//     follows every way to hold a node but the subtracted sides of
//     exclusions (which only take away), and expirations only remove
//     relationships, so no way can appear at this revision;
//   - an object it reached as a candidate (state 1) is decided from the
//     facts when its permission combines other relations of the same
//     object only (`(direct + delegated) - suspended`), and otherwise
//     evaluated as usual.
//
// Facts are exact answers (they rest on no assumption of an evaluation in
// progress), so what is derived from them may be cached and shared like
// any other answer: a derived grant carries the bound of the path.
type walkFacts struct {
	schema *schema.Schema
	// resourceType is the lookup's: no walk covers its objects (they
	// are the candidates), so its checks skip the facts.
	resourceType string
	walks        []*reverseWalk
	// unwalked lists the nodes on subtracted sides (schema.Paths.Subtracted)
	// still to walk, on the first check that consults the facts: a check
	// of a candidate of `(... + project->read) - project->suspended`
	// needs to know where the subject is suspended, which no path to the
	// target holds. One walk each, usually a single query finding nothing.
	unwalked []schema.Node
	// derived memoizes what was decided (or not) from a permission's
	// expression, so a shared expression is worked out once per object
	// however many candidates and branches ask.
	derived map[node]derivedFact
}

// derivedFact is a permission's answer worked out from the facts; ok is
// false when they do not decide it.
type derivedFact struct {
	o  outcome
	ok bool
}

// sideWalkObjects bounds the objects a walk of a subtracted side may
// reach; past it the walk stops and covers nothing, and the checks
// evaluate that side as usual.
const sideWalkObjects = 1024

// newWalkFacts returns the facts of w, a complete walk to target along
// paths, to be extended with walks of the subtracted sides on first use.
// A side of the target's own type is left out: a candidate's check reads
// its object's relationships anyway, and walking such a side would read
// every object of the type the subject holds it on, page after page.
func newWalkFacts(w *reverseWalk, paths *schema.Paths) *walkFacts {
	f := &walkFacts{schema: w.ev.schema, resourceType: paths.Target.Type, walks: []*reverseWalk{w}}
	for _, n := range paths.Subtracted() {
		if n.Type != paths.Target.Type {
			f.unwalked = append(f.unwalked, n)
		}
	}
	return f
}

// walkSubtracted walks each subtracted side the facts do not cover yet
// and the subject can hold, in collect mode (no candidate is checked).
func (ev *evaluation) walkSubtracted() error {
	f := ev.facts
	todo := f.unwalked
	f.unwalked = nil
	for _, n := range todo {
		if f.covering(n) != nil || !ev.canHold(n.Type, n.Relation) {
			continue
		}
		w := newReverseWalk(ev, n, ev.schema.Reachability().Lookup(n))
		w.limit = sideWalkObjects
		if err := w.run(); err != nil {
			return err
		}
		if !w.stop {
			f.walks = append(f.walks, w)
		}
	}
	return nil
}

// factsDepth bounds how deep a candidate's permission is decided from the
// facts through relations of the same object; deeper ones are evaluated.
const factsDepth = 8

// covers reports whether the walk found every object on which the subject
// may hold node n. A walk that stopped early covers nothing; a walk that
// stops below its target type (final) leaves that type's objects to its
// lists.
func (w *reverseWalk) covers(n schema.Node) bool {
	return !w.stop && w.paths.Reaches(n) && !w.inFinal(n)
}

// covering returns a walk that covers n, or nil.
func (f *walkFacts) covering(n schema.Node) *reverseWalk {
	for _, w := range f.walks {
		if w.covers(n) {
			return w
		}
	}
	return nil
}

// outcome answers relation rel of typ:id from the facts; ok is false when
// no walk covers it, or when it is a candidate the facts do not decide.
func (f *walkFacts) outcome(typ, id, rel string, depth int) (o outcome, ok bool) {
	k := node{typ, id, rel}
	if w := f.covering(schema.Node{Type: typ, Relation: rel}); w != nil {
		switch w.state[k] {
		case 0:
			return noOutcome, true
		case 2:
			until, bounded := w.until[k]
			if !bounded {
				until = dispatch.Never
			}
			return outcome{perm: HasPermission, low: dispatch.NoLow, until: until}, true
		}
		// A candidate: decided from its expression, if it can be.
	}
	if d, seen := f.derived[k]; seen {
		return d.o, d.ok
	}
	def := f.schema.Definitions[typ]
	if def == nil || def.Permissions[rel] == nil || depth >= factsDepth {
		return outcome{}, false
	}
	o, ok = f.expr(typ, id, def.Permissions[rel].Expr, depth+1)
	if f.derived == nil {
		f.derived = make(map[node]derivedFact)
	}
	f.derived[k] = derivedFact{o, ok}
	return o, ok
}

// expr evaluates x on typ:id from the facts alone: relations of the same
// object, combined as the evaluator combines them. Arrows need the
// object's relationships, so an expression with one is not decided.
func (f *walkFacts) expr(typ, id string, x schema.Expr, depth int) (outcome, bool) {
	switch x := x.(type) {
	case *schema.Nil:
		return noOutcome, true
	case *schema.RelationRef:
		return f.outcome(typ, id, x.Name, depth)
	case *schema.Union:
		o := noOutcome
		for _, c := range x.Children {
			co, ok := f.expr(typ, id, c, depth)
			if !ok {
				return outcome{}, false
			}
			if o.or(co); o.perm == HasPermission {
				return o, true
			}
		}
		return o, true
	case *schema.Intersection:
		var o outcome
		for i, c := range x.Children {
			co, ok := f.expr(typ, id, c, depth)
			if !ok {
				return outcome{}, false
			}
			if i == 0 {
				o = co
			} else {
				o.and(co)
			}
			if o.perm == NoPermission {
				return o, true
			}
		}
		return o, true
	case *schema.Exclusion:
		o, ok := f.expr(typ, id, x.Base, depth)
		if !ok || o.perm == NoPermission {
			return o, ok
		}
		sub, ok := f.expr(typ, id, x.Subtracted, depth)
		if !ok {
			return outcome{}, false
		}
		o.minus(sub)
		return o, true
	}
	return outcome{}, false
}

// checkWithFacts is checkBatch answering from the facts what they decide
// and checking the rest.
func (ev *evaluation) checkWithFacts(typ, rel string, ids []string, depth int) ([]outcome, error) {
	if typ == ev.facts.resourceType {
		return ev.checkHoldable(typ, rel, ids, depth)
	}
	if len(ev.facts.unwalked) > 0 {
		if err := ev.walkSubtracted(); err != nil {
			return nil, err
		}
	}
	out := ev.newOutcomes(len(ids))
	var rest []int
	for i, id := range ids {
		o, ok := ev.facts.outcome(typ, id, rel, 0)
		if !ok {
			rest = append(rest, i)
			continue
		}
		out[i] = o
	}
	switch len(rest) {
	case 0:
		return out, nil
	case len(ids):
		return ev.checkHoldable(typ, rel, ids, depth)
	}
	res, err := ev.checkHoldable(typ, rel, pick(ids, rest), depth)
	if err != nil {
		return nil, err
	}
	for j, i := range rest {
		out[i] = res[j]
	}
	return out, nil
}
