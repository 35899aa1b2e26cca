package check

import (
	"fmt"
	"slices"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// evalExpr evaluates a permission expression for each of ids; perm names
// the permission (for paths).
func (ev *evaluation) evalExpr(typ string, ids []string, x schema.Expr, perm string, depth int) ([]outcome, error) {
	switch x := x.(type) {
	case *schema.RelationRef:
		return ev.checkBatch(typ, x.Name, ids, depth+1)
	case *schema.Nil:
		return ev.noOutcomes(len(ids)), nil
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
	out := ev.noOutcomes(len(ids))
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

// edge is a relationship from a batch resource (at index i) to an object
// whose relation must then be checked. rel points into rows the
// evaluation holds (see readEach) and is never written through.
type edge struct {
	i   int
	rel *graph.Relationship
}

// checkTargets checks rel on every subject object of edges, returning the
// outcome per edge (aligned with edges). Objects are deduplicated and
// checked as one batch per type.
func (ev *evaluation) checkTargets(edges []edge, rel string, depth int) ([]outcome, error) {
	res := ev.newOutcomes(len(edges))
	done := make([]bool, len(edges))
	// The objects of one type, and for each edge its position among them,
	// in buffers the types share.
	idBuf := make([]string, 0, len(edges))
	atBuf := make([]int, 0, 2*len(edges))
	for k := range edges {
		if done[k] {
			continue
		}
		t := edges[k].rel.Subject.Object.Type
		// Gather the distinct objects of type t from edge k on.
		ids := idBuf[len(idBuf):len(idBuf)]
		at := atBuf[len(atBuf):len(atBuf)] // pairs: edge index, position in ids
		var index map[string]int           // for many objects; a scan is cheaper for few
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
			out = ev.noOutcomes(len(ids))
		} else {
			var err error
			if out, err = ev.checkBatch(t, rel, ids[:len(ids):len(ids)], depth+1); err != nil {
				return nil, err
			}
		}
		for i := 0; i < len(at); i += 2 {
			res[at[i]] = out[at[i+1]]
			done[at[i]] = true
		}
		idBuf, atBuf = idBuf[:len(idBuf)+len(ids)], atBuf[:len(atBuf)+len(at)]
	}
	return res, nil
}

// arrowMemberMax bounds the closure members an arrow's tupleset read may
// name; past it the read takes every row of the type.
const arrowMemberMax = 256

// arrowRows narrows the read of an arrow's tupleset to the rows that can
// grant; rows of any other kind answer no in checkTargets. It keeps the
// rows of the one subject type that defines the target and, in a check,
// can lead to the subject (canHold): a project's `viewer->membership`
// reads its team viewers, not its thousands of users. When, further, the
// objects' rows are not at hand and the target has a reverse closure from
// the check's plain subject (closureFor), it keeps the rows naming the
// closure's members: `tier->clearance`'s `cleared_team->membership` reads
// the rows of the few teams the user is in, not the tier's thousands of
// cleared teams. f is nil when several types can grant (every row is
// read); none reports that no row can. A .all arrow reads every row: an
// object of another type blocks it.
func (ev *evaluation) arrowRows(typ string, ids []string, a *schema.Arrow) (f *storage.SubjectFilter, none bool, err error) {
	var tupleset *schema.Relation
	if def := ev.schema.Definitions[typ]; def != nil {
		tupleset = def.Relations[a.Tupleset]
	}
	if a.Func != schema.ArrowAny || tupleset == nil {
		return nil, false, nil
	}
	only := ""
	for _, al := range tupleset.Allowed {
		if al.Type == only {
			continue
		}
		if sub := ev.schema.Definitions[al.Type]; sub == nil || !sub.Has(a.Target) || !ev.canHold(al.Type, a.Target) {
			continue
		}
		if only != "" {
			return nil, false, nil
		}
		only = al.Type
	}
	if only == "" {
		return nil, true, nil
	}
	f = &storage.SubjectFilter{Type: only}
	if ev.subject.Object.Type == "" || ev.subject.Relation != "" {
		return f, false, nil
	}
	var small [16][]graph.Relationship
	if _, ok := ev.prefetchedRows(typ, ids, small[:0]); ok {
		return f, false, nil // filtering rows at hand costs nothing
	}
	cl, err := ev.closureFor(only, a.Target)
	if err != nil || cl == nil || cl.of != nil || len(cl.level) > arrowMemberMax {
		return f, false, err
	}
	members := make([]string, 0, len(cl.level)+1)
	for id := range cl.level {
		members = append(members, id)
	}
	if allowsWildcard(tupleset, only) {
		members = append(members, graph.Wildcard)
	}
	if len(members) == 0 {
		return nil, true, nil
	}
	slices.Sort(members)
	f.IDs = members
	return f, false, nil
}

// evalArrow evaluates tupleset->target (or .any/.all) for each of ids: it
// reads the tupleset's relationships, checks target on the objects they
// name as one batch per type, and combines each relationship's caveat
// with its object's answer: any one such grant for `->` and `.any`, all
// of them (and at least one) for `.all`.
func (ev *evaluation) evalArrow(typ string, ids []string, a *schema.Arrow, perm string, depth int) ([]outcome, error) {
	subjects, none, err := ev.arrowRows(typ, ids, a)
	if err != nil {
		return nil, err
	}
	if none {
		return ev.noOutcomes(len(ids)), nil
	}
	ix := newIndex(ids)
	var edges []edge
	err = ev.readEach(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: a.Tupleset, Subject: subjects}, func(r *graph.Relationship) {
		if i := ix.find(r.Resource.ID); i >= 0 {
			edges = append(edges, edge{i, r})
		}
	})
	if err != nil {
		return nil, err
	}
	if edges, err = ev.dropNonHolders(edges, a); err != nil {
		return nil, err
	}
	out := ev.noOutcomes(len(ids))
	if len(edges) == 0 {
		return out, nil
	}
	res, err := ev.checkTargets(edges, a.Target, depth)
	if err != nil {
		return nil, err
	}
	var via string // the arrow step of paths, only built when explaining
	if ev.explain {
		via = a.Tupleset + "->" + a.Target
		if a.Func == schema.ArrowAll {
			via = a.Tupleset + ".all(" + a.Target + ")"
		}
	}
	// mk returns the edge's caveat outcome and the target's outcome with
	// the arrow step on its path.
	mk := func(ed *edge, t outcome) (outcome, outcome, error) {
		c, err := ev.caveat(ed.rel)
		if err != nil {
			return outcome{}, t, err
		}
		if ev.explain && t.path != nil {
			t.path = &pathNode{obj: graph.ObjectRef{Type: typ, ID: ids[ed.i]}, rel: perm, via: via, rship: ed.rel, next: t.path}
		}
		return c, t, nil
	}
	if a.Func == schema.ArrowAny {
		for k := range edges {
			ed := &edges[k]
			if !mayExtend(out[ed.i], res[k]) {
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
		edgeUntil := c.until
		c.and(t)
		if c.perm == NoPermission {
			// A related object that does not grant blocks .all only while
			// its relationship lasts: once that expires, the object no
			// longer counts and the others may grant.
			c.until = min(c.until, edgeUntil)
		}
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
