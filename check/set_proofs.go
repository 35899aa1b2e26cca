package check

import (
	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// Proofs of set membership. A set evaluation that keeps proofs records,
// for every subject it lifts to "yes" in a set, why: the relationship or
// schema step that put it there and the set below it that already held
// the subject. Following these records down from a permission's set
// rebuilds the chain a check in explain mode would return (see
// pathNode), without evaluating anything again: WhoCanAccess uses it for
// the path of each row set evaluation answered.
//
// A record is written once, when the subject's membership first becomes
// "yes", from sets that were complete at that moment, so the records form
// no cycle and every relationship in them was read live, with a caveat
// that is true (or none). A wildcard relationship is the record of every
// subject a set holds through it (subjectSet.defWhy). Memberships a
// record cannot explain (the intersection of a .all arrow, "maybe") have
// no record, and a path is not built for them (proofPath returns nil):
// the caller finds one otherwise.

// proof is why a subject is in a set.
type proof struct {
	// step, when set, is the path node this proof adds on top of the
	// chain below it (obj#rel, reached over rship, by way of arrow via).
	step  bool
	obj   graph.ObjectRef
	rel   string
	via   string
	rship *graph.Relationship
	// in is the set below the step that holds the subject; nil when the
	// step's relationship names the subject itself.
	in *setRef
	// also is the set of an intersection's other side that holds the
	// subject too: its chain joins the path (pathNode.also).
	also *setRef
}

// setRef names a set a proof leads to: the set of node at (a relation or
// permission of an object; at.typ empty for a set an expression
// computed), which is inner's set when at is a permission whose
// expression passed a set through unchanged.
type setRef struct {
	set   *subjectSet
	at    node
	inner *setRef
}

// refOf returns the reference of r, the set of node n (n.typ empty for an
// expression's set).
func refOf(r setResult, n node) *setRef {
	if n.typ == "" && r.ref != nil {
		return r.ref
	}
	return &setRef{set: r.set, at: n, inner: r.ref}
}

// whyOf returns the record of id in s, if any: its own, or, for a
// subject s does not list, the record of everyone.
func (s *subjectSet) whyOf(id subjectID) *proof {
	if p, ok := s.why[id]; ok {
		return p
	}
	if _, listed := s.listed(id); !listed && s.def == memberYes {
		return s.defWhy
	}
	return nil
}

// proveAll records p as why every subject is in s, which a wildcard
// relationship is about to lift to "yes": those not listed, and those
// listed but not "yes" yet.
func (s *subjectSet) proveAll(p *proof) {
	if s.def != memberYes {
		s.defWhy = p
	}
	for i, id := range s.keys {
		if s.vals[i] != memberYes {
			s.prove(id, p)
		}
	}
}

// proveUnion records why the subjects "yes" in out, the union of s and
// another set reached by step p, are there: s's record where s has them
// "yes", else p.
func proveUnion(out, s *subjectSet, p *proof) {
	if out.def == memberYes {
		out.defWhy = p
		if s.def == memberYes {
			out.defWhy = s.defWhy
		}
	}
	for i, id := range out.keys {
		if out.vals[i] != memberYes {
			continue
		}
		w := p
		if s.get(id) == memberYes {
			w = s.whyOf(id)
		}
		if w != nil {
			out.prove(id, w)
		}
	}
}

// prove records p as why id is in s, unless s already has a record.
func (s *subjectSet) prove(id subjectID, p *proof) {
	if s.why == nil {
		s.why = make(map[subjectID]*proof)
	}
	if _, ok := s.why[id]; !ok {
		s.why[id] = p
	}
}

// setAnswer is what a set evaluation that answered a lookup knows of the
// subjects of the permission's set: why each one "yes" holds it (the
// proofs under ref) and until when (ref.set's untils).
type setAnswer struct {
	ref *setRef
	// ids numbered the subjects of ref's sets.
	ids *subjectIDs
	// exactEnds: the set only loses subjects as time passes, so a "yes"
	// subject's until is when its access ends (see setResult.loose).
	exactEnds bool
}

// held returns, for a subject id "yes" in the set, its outcome at the
// evaluation's instant (without a path) and whether the outcome's until
// is when its access ends. That until is the subject's in the set: the
// instant before which it stays granted, perhaps only conditionally
// (what endsAfter needs, not when the answer may change, as a check's
// until is), and often later than a check's, which stops at the first
// branch that grants where the set evaluation timed them all.
func (a *setAnswer) held(name string) (o outcome, exact, ok bool) {
	s := a.ref.set
	id := a.ids.numberOf(name)
	if s.get(id) != memberYes {
		return outcome{}, false, false
	}
	o = outcome{perm: HasPermission, low: dispatch.NoLow, until: dispatch.Never}
	if u := s.untilOf(id); u != 0 {
		o.until = u
	}
	return o, a.exactEnds, true
}

// path rebuilds the chain that proves the subject of ID name is in the
// answer's set (see proofPath), or returns nil.
func (a *setAnswer) path(sch *schema.Schema, name string) *pathNode {
	return proofPath(sch, a.ref, a.ids.numberOf(name))
}

// proofPath rebuilds the chain that proves subject id is in the set
// ref names, as the evaluator builds it in explain mode, or returns nil
// when some membership on the way has no record.
func proofPath(sch *schema.Schema, ref *setRef, id subjectID) *pathNode {
	var pn *pathNode
	if ref.inner != nil {
		pn = proofPath(sch, ref.inner, id)
	} else {
		p := ref.set.whyOf(id)
		if p == nil {
			return nil
		}
		pn = proofChain(sch, p, id)
	}
	if pn == nil {
		return nil
	}
	if ref.at.typ != "" {
		if def := sch.Definitions[ref.at.typ]; def != nil && def.Permissions[ref.at.rel] != nil &&
			!(pn.rel == ref.at.rel && pn.obj.ID == ref.at.id && pn.obj.Type == ref.at.typ) {
			// A permission's own step, as evaluateOnce adds it.
			pn = &pathNode{obj: graph.ObjectRef{Type: ref.at.typ, ID: ref.at.id}, rel: ref.at.rel, next: pn}
		}
	}
	return pn
}

// proofChain is proofPath from one record.
func proofChain(sch *schema.Schema, p *proof, id subjectID) *pathNode {
	var below *pathNode
	if p.in != nil {
		if below = proofPath(sch, p.in, id); below == nil {
			return nil
		}
	}
	pn := below
	if p.step {
		pn = &pathNode{obj: p.obj, rel: p.rel, via: p.via, rship: p.rship, next: below}
	}
	if pn == nil {
		return nil
	}
	if p.also != nil {
		other := proofPath(sch, p.also, id)
		if other == nil {
			return nil
		}
		pn = joinPaths(pn, other)
	}
	return pn
}

// proveCombined records why the subjects "yes" in out, the combination
// of a and b by op, are there: a union's from the side that holds them
// (a first), an intersection's from both sides, an exclusion's from its
// base. The kind of op is read from its truth table.
func proveCombined(out *subjectSet, a, b setResult, op func(x, y member) member) {
	ra, rb := refOf(a, node{}), refOf(b, node{})
	union := op(memberNo, memberYes) == memberYes
	both := !union && op(memberYes, memberNo) == memberNo
	fromA, fromB := &proof{in: ra}, &proof{in: rb}
	if both {
		fromA.also = rb
	}
	if out.def == memberYes {
		out.defWhy = fromA
		if union && a.set.def != memberYes {
			out.defWhy = fromB
		}
	}
	for i, id := range out.keys {
		if out.vals[i] != memberYes {
			continue
		}
		switch {
		case union && a.set.get(id) != memberYes:
			out.prove(id, fromB)
		default:
			out.prove(id, fromA)
		}
	}
}
