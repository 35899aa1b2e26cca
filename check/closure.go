package check

import (
	"fmt"
	"slices"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/check/reach"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// closureBudget bounds the objects a reverse closure may collect before the
// evaluator falls back to walking forward.
const closureBudget = 1024

// closure is the set of objects of one type whose recursive relation
// (`relation member: user | group#member`) or recursive permission
// (`permission membership = member + subteam->membership`) contains the
// evaluation's subject, found by walking the reverse index upwards from
// the subject: a few queries for a subject in a few groups, where walking
// forward from a large group (or from the hundreds of teams cleared for a
// tier) would visit all of its descendants. It is computed once per
// evaluation and answers every check of that relation or permission.
type closure struct {
	ok    bool             // false: over budget, walk forward instead
	level map[string]int32 // object ID → length of its shortest chain to the subject
	link  map[string]graph.Relationship
	// until holds, for members whose chain has an expiring relationship,
	// when that chain ends (unix nanoseconds): the member stays one at
	// least until then. Members not in it hold for good. Objects outside
	// the closure stay outside as time passes: expirations only remove.
	until map[string]int64
	// extra is the depth a permission's step adds to a chain: the
	// permission is evaluated one level above its relations.
	extra int
	// of, when set, answers from a reachability index (Config.Reach)
	// instead of level and until.
	of func(id string) (level int32, until int64, ok bool)
	// filterOnly marks a permission's closure built for an explain pass:
	// it says which objects are members, but cannot give their paths
	// through each arrow, so the members are walked forward (see
	// membersForward).
	filterOnly bool
}

// Reach is a reachability index of recursive relations (package
// check/reach). Holders returns, for plain subject sub, a function giving
// for an object of typ whether its relation rel holds sub through any
// depth at revision rev and instant now (unix nanoseconds), with the
// length of the shortest chain and until when it holds (dispatch.Never
// for good), exactly as a reverse closure walked at that snapshot would;
// ok false when the index cannot answer exactly, and the closure is
// walked.
//
// Ancestors returns, for a permission recursive over parent relation rel
// of typ (see reach.Qualify), ids and every object above them through
// rel at revision rev and instant now, with each one's unexpired parents,
// exactly as the relationships read at that snapshot would give them; ok
// false when the index cannot answer exactly or the lineage passes limit
// objects, and the permission is walked (see fromAncestors).
//
// Referrers is Ancestors the other way, for a parent relation a
// permission steps through to itself (`membership = member +
// subteam->membership`, see reach.StepKeys): ids and every object whose
// relation rel names one of them, through any depth. A reverse closure of
// such a permission climbs it in memory instead of reading each level.
type Reach interface {
	Holders(rev storage.Revision, typ, rel string, sub graph.ObjectRef, now int64) (of func(id string) (level int32, until int64, ok bool), ok bool)
	Ancestors(rev storage.Revision, typ, rel string, ids []string, now int64, limit int) (reach.Lineage, bool)
	Referrers(rev storage.Revision, typ, rel string, ids []string, now int64, limit int) (reach.Lineage, bool)
}

// closureSpec is how a closure is walked: the relations of the type whose
// plain subjects seed it, and the steps that lead from a member to more:
// a relationship typ:x#step.rel@typ:y#step.subjectRel with y a member
// makes x one.
type closureSpec struct {
	seeds []*schema.Relation
	// via are arrows to plain relations of other types
	// (`member->delegate`): objects related to an object whose relation
	// names the subject are members.
	via   []closureVia
	steps []closureStep
	extra int
}

// closureVia is an arrow tupleset->target whose every target is a plain
// relation (schema.Relation.Plain) of the tupleset's allowed types.
type closureVia struct {
	tupleset string
	targets  []*schema.Relation
	types    []string // targets[i] is a relation of types[i]
}

type closureStep struct{ rel, subjectRel string }

// recursive reports whether r on typ qualifies for a reverse closure: its
// only subject set is itself (typ#r) and no caveat is allowed, so every
// chain of relationships is an unconditional grant.
func recursive(typ string, r *schema.Relation) bool {
	self := false
	for _, a := range r.Allowed {
		if a.Caveat != "" {
			return false
		}
		if a.Relation != "" {
			if a.Type != typ || a.Relation != r.Name {
				return false
			}
			self = true
		}
	}
	return self
}

// recursivePermission returns the closure spec of permission p on def
// when p is a union of plain relations of def (schema.Relation.Plain), arrows
// back to p itself over relations to plain objects of def
// (`permission administer = admin + parent->administer`), and arrows to
// plain relations of other types (`member->delegate`), so every chain of
// relationships up to a seed is an unconditional grant; ok false
// otherwise.
func recursivePermission(s *schema.Schema, def *schema.Definition, p *schema.Permission) (closureSpec, bool) {
	spec := closureSpec{extra: 1}
	addVia := func(x *schema.Arrow, r *schema.Relation) bool {
		v := closureVia{tupleset: x.Tupleset}
		for _, a := range r.Allowed {
			if a.Wildcard {
				return false
			}
			tdef := s.Definitions[a.Type]
			if tdef == nil || !tdef.Has(x.Target) {
				continue // the arrow grants nothing through this type
			}
			t := tdef.Relations[x.Target]
			if !t.Plain() {
				return false
			}
			v.targets, v.types = append(v.targets, t), append(v.types, a.Type)
		}
		spec.via = append(spec.via, v)
		return true
	}
	var add func(x schema.Expr) bool
	add = func(x schema.Expr) bool {
		switch x := x.(type) {
		case *schema.Union:
			for _, c := range x.Children {
				if !add(c) {
					return false
				}
			}
			return true
		case *schema.RelationRef:
			r := def.Relations[x.Name]
			if !r.Plain() {
				return false
			}
			spec.seeds = append(spec.seeds, r)
			return true
		case *schema.Arrow:
			r := def.Relations[x.Tupleset]
			if x.Func != schema.ArrowAny || !r.Plain() {
				return false
			}
			self := x.Target == p.Name
			for _, a := range r.Allowed {
				self = self && a.Type == def.Name && !a.Wildcard
			}
			if !self {
				return addVia(x, r)
			}
			spec.steps = append(spec.steps, closureStep{rel: x.Tupleset})
			return true
		}
		return false
	}
	if !add(p.Expr) || len(spec.steps) == 0 {
		return closureSpec{}, false
	}
	return spec, true
}

// closureSpecFor returns how the closure of relation or permission rel
// of def is walked; ok is false when it does not qualify (see recursive
// and recursivePermission).
func closureSpecFor(s *schema.Schema, def *schema.Definition, rel string) (closureSpec, bool) {
	if r := def.Relations[rel]; r != nil {
		if !recursive(def.Name, r) {
			return closureSpec{}, false
		}
		return closureSpec{seeds: []*schema.Relation{r}, steps: []closureStep{{rel: rel, subjectRel: rel}}}, true
	}
	if p := def.Permissions[rel]; p != nil {
		return recursivePermission(s, def, p)
	}
	return closureSpec{}, false
}

// closureFor returns the closure for relation or permission rel of typ,
// or nil when it does not qualify (see recursive and recursivePermission)
// or the closure is over budget. In an explain pass a permission's
// closure only filters (closure.filterOnly): the forward walk builds the
// path through each arrow.
func (ev *evaluation) closureFor(typ, rel string) (*closure, error) {
	if ev.subject.Relation != "" {
		return nil, nil
	}
	k := node{typ: typ, rel: rel}
	if cl, ok := ev.closures[k]; ok {
		if !cl.ok {
			return nil, nil
		}
		return cl, nil
	}
	def := ev.schema.Definitions[typ]
	if def == nil {
		return nil, nil
	}
	spec, ok := closureSpecFor(ev.schema, def, rel)
	if !ok {
		return nil, nil
	}
	if def.Relations[rel] != nil {
		if cl := ev.indexed(typ, rel); cl != nil {
			if ev.closures == nil {
				ev.closures = make(map[node]*closure)
			}
			ev.closures[k] = cl
			return cl, nil
		}
	}
	cl, err := ev.buildClosure(typ, spec)
	if err != nil {
		return nil, err
	}
	cl.filterOnly = ev.explain && spec.extra > 0
	if ev.closures == nil {
		ev.closures = make(map[node]*closure)
	}
	ev.closures[k] = cl
	if !cl.ok {
		return nil, nil
	}
	return cl, nil
}

// indexed returns the closure of recursive relation rel of typ from the
// engine's reachability index, or nil when there is none or it declines.
// Explain passes walk: their paths need each chain's relationships.
func (ev *evaluation) indexed(typ, rel string) *closure {
	if ev.eng.cfg.Reach == nil || ev.explain {
		return nil
	}
	of, ok := ev.eng.cfg.Reach.Holders(ev.rev, typ, rel, ev.subject.Object, ev.nowNano)
	if !ok {
		return nil
	}
	return &closure{ok: true, of: of}
}

// buildClosure walks the reverse index up from the subject, level by
// level, and gives up (an empty closure, ok false) past closureBudget
// objects.
func (ev *evaluation) buildClosure(typ string, spec closureSpec) (*closure, error) {
	s := ev.subject
	cl := &closure{ok: true, level: make(map[string]int32), extra: spec.extra}
	if ev.explain {
		cl.link = make(map[string]graph.Relationship)
	}
	var frontier []string
	// add adds rel's resource as a member at level, reached from rel's
	// subject, whose own chain holds until u, and reports whether it is
	// new.
	add := func(level int32, u int64, rel graph.Relationship) bool {
		u = pathUntil(u, &rel)
		id := rel.Resource.ID
		if _, seen := cl.level[id]; seen {
			// Another chain: the member holds while either does.
			if old := cl.untilOf(id); u > old {
				cl.setUntil(id, u)
			}
			return false
		}
		cl.setUntil(id, u)
		cl.level[id] = level
		if cl.link != nil {
			cl.link[id] = rel
		}
		return true
	}
	first := func(rel graph.Relationship, u int64) {
		if add(1, u, rel) {
			frontier = append(frontier, rel.Resource.ID)
		}
	}
	ellipsis := ""
	subjects := []string{s.Object.ID}
	for _, r := range spec.seeds {
		ids := subjects
		if s.Object.ID != graph.Wildcard && allowsWildcard(r, s.Object.Type) {
			ids = append(ids[:1:1], graph.Wildcard)
		}
		if err := ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: s.Object.Type, IDs: ids, Relation: &ellipsis},
			ResourceType: typ, Relation: r.Name}, func(rel graph.Relationship) { first(rel, dispatch.Never) }); err != nil {
			return nil, err
		}
	}
	for _, v := range spec.via {
		ok, err := ev.viaReverse(typ, v, s.Object.Type, subjects, closureBudget, first)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &closure{}, nil
		}
	}
	if climbed, ok := ev.climb(cl, typ, spec, frontier); ok {
		return climbed, nil
	}
	ok, err := ev.climbSteps(typ, spec.steps, frontier, func() bool { return len(cl.level) > closureBudget },
		func(level int32, rel graph.Relationship) bool {
			return add(level, cl.untilOf(rel.Subject.Object.ID), rel)
		})
	if err != nil {
		return nil, err
	}
	if !ok {
		return &closure{}, nil
	}
	return cl, nil
}

// viaReverse reads the objects of typ an arrow to plain relations, v,
// leads from to one of subjects (IDs of subjectType; a wildcard of it
// too where a target allows one): the objects whose target relation
// names one of them, then the objects of typ whose tupleset names those.
// found gets each relationship of the second read with until when the
// target's relationship holds (dispatch.Never for good; the latest of
// several). ok is false, with nothing found, when more than budget
// objects lie between.
func (ev *evaluation) viaReverse(typ string, v closureVia, subjectType string, subjects []string, budget int, found func(rel graph.Relationship, until int64)) (bool, error) {
	ellipsis := ""
	chunk := ev.eng.cfg.ChunkSize
	for k, t := range v.targets {
		ids := subjects
		if !slices.Contains(subjects, graph.Wildcard) && allowsWildcard(t, subjectType) {
			ids = append(ids[:len(ids):len(ids)], graph.Wildcard)
		}
		var mid []string
		midUntil := make(map[string]int64)
		for start := 0; start < len(ids); start += chunk {
			part := ids[start:min(start+chunk, len(ids))]
			if err := ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: subjectType, IDs: part, Relation: &ellipsis},
				ResourceType: v.types[k], Relation: t.Name}, func(rel graph.Relationship) {
				u := pathUntil(dispatch.Never, &rel)
				id := rel.Resource.ID
				if old, seen := midUntil[id]; !seen {
					mid = append(mid, id)
					midUntil[id] = u
				} else {
					midUntil[id] = max(old, u)
				}
			}); err != nil {
				return false, err
			}
		}
		if len(mid) > budget {
			return false, nil
		}
		for start := 0; start < len(mid); start += chunk {
			part := mid[start:min(start+chunk, len(mid))]
			if err := ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: v.types[k], IDs: part, Relation: &ellipsis},
				ResourceType: typ, Relation: v.tupleset}, func(rel graph.Relationship) { found(rel, midUntil[rel.Subject.Object.ID]) }); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// climbSteps walks up from frontier (objects of typ) through steps a
// level at a time, from level 2, by reverse reads: visit gets each
// relationship found with its level and reports whether its resource is
// new, and the new ones make the next level. ok is false when over
// reports the budget passed before a level.
func (ev *evaluation) climbSteps(typ string, steps []closureStep, frontier []string, over func() bool, visit func(level int32, rel graph.Relationship) bool) (bool, error) {
	chunk := ev.eng.cfg.ChunkSize
	for level := int32(2); len(frontier) > 0; level++ {
		if over() {
			return false, nil
		}
		cur := frontier
		frontier = nil
		for start := 0; start < len(cur); start += chunk {
			part := cur[start:min(start+chunk, len(cur))]
			for _, st := range steps {
				subjectRel := st.subjectRel
				if err := ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: typ, IDs: part, Relation: &subjectRel},
					ResourceType: typ, Relation: st.rel}, func(rel graph.Relationship) {
					if visit(level, rel) {
						frontier = append(frontier, rel.Resource.ID)
					}
				}); err != nil {
					return false, err
				}
			}
		}
	}
	return true, nil
}

// climb completes a closure from its first level, frontier, with the
// reachability index's referrers of its one step relation instead of a
// reverse query per level: the same levels, untils and budget as the walk
// below, found in memory. ok is false when it cannot (no index, an
// explain pass, which needs each chain's relationships, several steps, or
// the index declines), and the walk goes on.
func (ev *evaluation) climb(cl *closure, typ string, spec closureSpec, frontier []string) (*closure, bool) {
	if ev.eng.cfg.Reach == nil || ev.explain || len(spec.steps) != 1 || spec.steps[0].subjectRel != "" || len(frontier) == 0 {
		return nil, false
	}
	l, ok := ev.eng.cfg.Reach.Referrers(ev.rev, typ, spec.steps[0].rel, frontier, ev.nowNano, len(frontier)+closureBudget+1)
	if !ok {
		return nil, false
	}
	cur := make([]int32, len(frontier))
	for i := range cur {
		cur[i] = int32(i)
	}
	for level := int32(2); len(cur) > 0; level++ {
		if len(cl.level) > closureBudget {
			return &closure{}, true
		}
		var next []int32
		for _, i := range cur {
			from := cl.untilOf(l.IDs[i])
			for _, st := range l.Up[i] {
				id, u := l.IDs[st.To], min(from, st.Until)
				if _, seen := cl.level[id]; seen {
					if u > cl.untilOf(id) {
						cl.setUntil(id, u)
					}
					continue
				}
				cl.setUntil(id, u)
				cl.level[id] = level
				next = append(next, st.To)
			}
		}
		cur = next
	}
	return cl, true
}

// reverse reads relationships by subject, calling fn for each.
func (ev *evaluation) reverse(f storage.ReverseFilter, fn func(graph.Relationship)) error {
	return ev.reverseUpTo(f, 0, fn)
}

// reverseUpTo is reverse reading at most limit rows (0: all).
func (ev *evaluation) reverseUpTo(f storage.ReverseFilter, limit int, fn func(graph.Relationship)) error {
	ev.eng.queries.Add(1)
	opts := ev.opts()
	opts.Limit = limit
	for r, err := range ev.reader.ReverseQueryRelationships(ev.ctx, f, opts) {
		if err != nil {
			return fmt.Errorf("reverse query %s#%s: %w", f.ResourceType, f.Relation, err)
		}
		fn(r)
	}
	return nil
}

// fromClosure answers typ#rel for ids from a closure; out already holds the
// identity answers.
func (ev *evaluation) fromClosure(cl *closure, typ, rel string, ids []string, out []outcome, depth int) ([]outcome, error) {
	for i, id := range ids {
		if out[i].perm == HasPermission {
			continue
		}
		lv, until, ok := cl.member(id)
		if !ok {
			continue
		}
		if depth+int(lv)-1+cl.extra > ev.limit {
			cut, ok := ev.cutBranch()
			if !ok {
				return nil, fmt.Errorf("%w (%d) at %s:%s#%s", ErrMaxDepth, ev.eng.cfg.MaxDepth, typ, id, rel)
			}
			out[i].perm, out[i].low = cut, dispatch.CutLow // out[i] was a plain "no"
			continue
		}
		out[i].perm, out[i].until = HasPermission, min(out[i].until, until)
		if ev.explain {
			out[i].path = cl.path(typ, rel, id)
		}
	}
	return out, nil
}

// member returns the length of id's shortest chain to the subject and
// when the chain ends, if id is a member.
func (cl *closure) member(id string) (level int32, until int64, ok bool) {
	if cl.of != nil {
		return cl.of(id)
	}
	lv, ok := cl.level[id]
	if !ok {
		return 0, 0, false
	}
	return lv, cl.untilOf(id), true
}

// untilOf returns when the chain that makes id a member ends (Never for
// one without an expiring relationship, or for a non-member).
func (cl *closure) untilOf(id string) int64 {
	if u, ok := cl.until[id]; ok {
		return u
	}
	return dispatch.Never
}

// setUntil records when id's chain ends.
func (cl *closure) setUntil(id string, u int64) {
	if u == dispatch.Never {
		delete(cl.until, id)
		return
	}
	if cl.until == nil {
		cl.until = make(map[string]int64)
	}
	cl.until[id] = u
}

// tooDeep reports whether a permission's closure grants one of ids
// through a chain that ends beyond the depth limit (a relation's closure
// cuts or reports those itself, see fromClosure).
func (cl *closure) tooDeep(ids []string, depth, limit int) bool {
	if cl.extra == 0 {
		return false
	}
	for _, id := range ids {
		if lv, _, ok := cl.member(id); ok && depth+int(lv)-1+cl.extra > limit {
			return true
		}
	}
	return false
}

// path rebuilds the shortest chain from object id down to the subject.
func (cl *closure) path(typ, rel, id string) *pathNode {
	var head, tail *pathNode
	for range len(cl.level) + 1 {
		r := cl.link[id]
		n := &pathNode{obj: graph.ObjectRef{Type: typ, ID: id}, rel: rel, rship: &r}
		if head == nil {
			head = n
		} else {
			tail.next = n
		}
		tail = n
		if r.Subject.Object.Type != typ || r.Subject.Relation != rel {
			break
		}
		id = r.Subject.Object.ID
	}
	return head
}
