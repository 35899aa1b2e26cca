package check

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// evalRelation answers relation r of typ for each of ids. A subject set
// has itself (identity); otherwise r holds through a relationship naming
// the subject (direct) or a subject set that has it (viaSubjectSets). (A
// recursive relation the subject's reverse closure answers never gets
// here: checkBatch answers it.)
func (ev *evaluation) evalRelation(typ string, ids []string, r *schema.Relation, depth int) ([]outcome, error) {
	out := ev.noOutcomes(len(ids))
	open := ev.identity(typ, ids, r.Name, out)
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
	err := ev.readEach(storage.Filter{ResourceType: typ, ResourceIDs: open, Relation: r.Name,
		Subject: &storage.SubjectFilter{Type: setType, Relation: &setRel}}, func(rel *graph.Relationship) {
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
		t := res[k]
		if !mayExtend(out[ed.i], t) {
			continue
		}
		c, err := ev.caveat(ed.rel)
		if err != nil {
			return err
		}
		c.and(t)
		if ev.explain && c.perm != NoPermission {
			c.path = &pathNode{obj: ed.rel.Resource, rel: r.Name, rship: ed.rel, next: t.path}
		}
		out[ed.i].or(c)
	}
	return nil
}

// mayExtend reports whether an edge to a target answered t can still
// change out, its resource's union so far: out does not grant yet, or
// it grants for a while and t might grant for longer (see outcome.or).
func mayExtend(out, t outcome) bool {
	return out.perm != HasPermission || (t.perm == HasPermission && t.until > out.until)
}

// allowsWildcard reports whether r allows a wildcard subject of typ.
func allowsWildcard(r *schema.Relation, typ string) bool {
	for _, a := range r.Allowed {
		if a.Wildcard && a.Type == typ {
			return true
		}
	}
	return false
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
