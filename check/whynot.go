package check

import (
	"fmt"
	"slices"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// denier builds a Denial for a NoPermission answer: a second pass over the
// schema's expressions that asks the evaluation (not in explain mode) for
// the answer of every branch before it says why the branch failed, so it
// never reports a granting branch as a failure. It reads relationships
// with their expirations visible to report the expired ones.
type denier struct {
	ev       *evaluation
	branches int            // branches made so far, at most MaxDenialBranches
	open     map[node]bool  // the permissions and relations being explained
	raw      storage.Reader // the snapshot's reader, past the read cache
}

// sinceEver is a query instant before any expiration a relationship can
// carry, so that expired relationships are visible (zero means now).
var sinceEver = time.Unix(0, 1)

// denial explains why ev's subject has no perm on res. It leaves ev out
// of explain mode, with a fresh memo.
func (ev *evaluation) denial(res graph.ObjectRef, perm string) (*Denial, error) {
	ev.reset()
	ev.explain, ev.limit = false, ev.eng.cfg.MaxDepth
	d := &denier{ev: ev, open: map[node]bool{}, raw: ev.rawReader()}
	root, err := d.named(res, perm, res.String()+"#"+perm, 0)
	if err != nil {
		return nil, fmt.Errorf("explain denial of %s#%s@%s: %w", res, perm, ev.subject, err)
	}
	return &Denial{Subject: ev.subject, Now: ev.now, Root: root}, nil
}

// rawReader returns the snapshot's reader without the read cache.
func (ev *evaluation) rawReader() storage.Reader {
	if ev.raw != nil {
		return ev.raw
	}
	return ev.reader
}

// full reports whether the bounds cut a branch at depth.
func (d *denier) full(depth int) bool {
	return d.branches >= MaxDenialBranches || depth > MaxDenialDepth
}

// take reserves a branch, or reports that the bounds cut it.
func (d *denier) take(depth int) bool {
	if d.full(depth) {
		return false
	}
	d.branches++
	return true
}

// add appends the branches to parent, counting the ones the bounds cut.
func (d *denier) add(parent *Branch, bs []*Branch, cut int) {
	parent.Children = append(parent.Children, bs...)
	parent.Omitted += cut
}

// status is the evaluation's answer for rel on obj.
func (d *denier) status(obj graph.ObjectRef, rel string) (Permissionship, error) {
	out, err := d.ev.checkBatch(obj.Type, rel, []string{obj.ID}, 1)
	if err != nil {
		return NoPermission, err
	}
	return out[0].perm, nil
}

// exprStatus is the evaluation's answer for expression x on obj.
func (d *denier) exprStatus(obj graph.ObjectRef, x schema.Expr, perm string) (outcome, error) {
	out, err := d.ev.evalExpr(obj.Type, []string{obj.ID}, x, perm, 1)
	if err != nil {
		return outcome{}, err
	}
	return out[0], nil
}

// granted returns a BranchGranted for expression x on obj, with the path
// an explaining evaluation finds for it.
func (d *denier) granted(obj graph.ObjectRef, x schema.Expr, perm, label string) (*Branch, error) {
	ev := d.ev
	saved := ev.memo
	defer func() { ev.reset(); ev.memo = saved; ev.explain, ev.limit = false, ev.eng.cfg.MaxDepth }()
	var best outcome
	for limit := 1; limit <= ev.eng.cfg.MaxDepth; limit++ {
		ev.reset()
		ev.explain, ev.limit = true, limit
		out, err := ev.evalExpr(obj.Type, []string{obj.ID}, x, perm, 1)
		if err != nil {
			return nil, err
		}
		best = out[0]
		if best.perm == HasPermission || !ev.cutoff {
			break
		}
	}
	return &Branch{Kind: BranchGranted, Label: label, Permissionship: best.perm, Object: obj, Relation: perm,
		Path: toPath(best.path, ev.subject, best.missing)}, nil
}

// named explains rel (a permission or relation) on obj, which the
// evaluation must answer NoPermission for; nil when the bounds cut it.
func (d *denier) named(obj graph.ObjectRef, rel, label string, depth int) (*Branch, error) {
	if !d.take(depth) {
		return nil, nil
	}
	k := node{obj.Type, obj.ID, rel}
	if d.open[k] {
		return &Branch{Kind: BranchCycle, Label: label, Object: obj, Relation: rel}, nil
	}
	st, err := d.status(obj, rel)
	if err != nil {
		return nil, err
	}
	if st != NoPermission {
		return &Branch{Kind: BranchGranted, Label: label, Permissionship: st, Object: obj, Relation: rel}, nil
	}
	d.open[k] = true
	defer delete(d.open, k)
	def := d.ev.schema.Definitions[obj.Type]
	if def != nil {
		if p := def.Permissions[rel]; p != nil {
			b := &Branch{Kind: BranchPermission, Label: label, Object: obj, Relation: rel, Expr: schema.ExprString(p.Expr)}
			bs, cut, err := d.expr(obj, p.Expr, rel, depth+1)
			if err != nil {
				return nil, err
			}
			d.add(b, bs, cut)
			return b, nil
		}
		if r := def.Relations[rel]; r != nil {
			return d.relation(obj, r, label, depth)
		}
	}
	return &Branch{Kind: BranchNoRelationship, Label: label, Object: obj, Relation: rel}, nil
}

// expr explains each branch of expression x on obj, which the evaluation
// answers NoPermission for, and returns how many branches the bounds cut.
func (d *denier) expr(obj graph.ObjectRef, x schema.Expr, perm string, depth int) ([]*Branch, int, error) {
	if _, union := x.(*schema.Union); !union && d.full(depth) {
		return nil, 1, nil // a union's operands are counted one by one
	}
	switch x := x.(type) {
	case *schema.RelationRef:
		b, err := d.named(obj, x.Name, x.Name, depth)
		return one(b, err)
	case *schema.Union:
		var out []*Branch
		cut := 0
		for _, c := range x.Children {
			bs, n, err := d.expr(obj, c, perm, depth)
			if err != nil {
				return nil, 0, err
			}
			out, cut = append(out, bs...), cut+n
		}
		return out, cut, nil
	case *schema.Intersection:
		b, err := d.intersection(obj, x, perm, depth)
		return one(b, err)
	case *schema.Exclusion:
		base, err := d.exprStatus(obj, x.Base, perm)
		if err != nil {
			return nil, 0, err
		}
		if base.perm == NoPermission {
			return d.expr(obj, x.Base, perm, depth)
		}
		b, err := d.exclusion(obj, x, perm, depth)
		return one(b, err)
	case *schema.Arrow:
		b, err := d.arrow(obj, x, perm, depth)
		return one(b, err)
	}
	return nil, 0, nil // *schema.Nil grants nothing and has nothing to explain
}

// one is the branches of a single branch b, which is nil when cut.
func one(b *Branch, err error) ([]*Branch, int, error) {
	if err != nil {
		return nil, 0, err
	}
	if b == nil {
		return nil, 1, nil
	}
	return []*Branch{b}, 0, nil
}

// intersection explains the first operand of x on obj that fails: as the
// evaluation does, it tries the operands in order and stops there, so it
// evaluates no caveat the check did not.
func (d *denier) intersection(obj graph.ObjectRef, x *schema.Intersection, perm string, depth int) (*Branch, error) {
	if !d.take(depth) {
		return nil, nil
	}
	b := &Branch{Kind: BranchIntersection, Label: schema.ExprString(x), Object: obj, Relation: perm}
	for _, c := range x.Children {
		o, err := d.exprStatus(obj, c, perm)
		if err != nil {
			return nil, err
		}
		if o.perm != NoPermission {
			continue
		}
		bs, cut, err := d.expr(obj, c, perm, depth+1)
		if err != nil {
			return nil, err
		}
		d.add(b, bs, cut)
		break
	}
	return b, nil
}

// exclusion explains an exclusion on obj whose base grants: its
// subtracted side grants too, and both are shown with their paths.
func (d *denier) exclusion(obj graph.ObjectRef, x *schema.Exclusion, perm string, depth int) (*Branch, error) {
	if !d.take(depth) {
		return nil, nil
	}
	sub := schema.ExprString(x.Subtracted)
	b := &Branch{Kind: BranchExcluded, Label: schema.ExprString(x), Object: obj, Relation: perm, Expr: sub}
	for _, side := range []schema.Expr{x.Base, x.Subtracted} {
		if !d.take(depth + 1) {
			b.Omitted++
			continue
		}
		g, err := d.granted(obj, side, perm, schema.ExprString(side))
		if err != nil {
			return nil, err
		}
		b.Children = append(b.Children, g)
	}
	return b, nil
}

// arrow explains an arrow on obj: every object its tupleset reaches
// (bounded), and why it failed.
func (d *denier) arrow(obj graph.ObjectRef, a *schema.Arrow, perm string, depth int) (*Branch, error) {
	if d.full(depth) {
		return nil, nil
	}
	via := a.Tupleset + "->" + a.Target
	if a.Func == schema.ArrowAll {
		via = a.Tupleset + ".all(" + a.Target + ")"
	}
	rels, more, err := d.read(storage.Filter{ResourceType: obj.Type, ResourceIDs: []string{obj.ID}, Relation: a.Tupleset})
	if err != nil {
		return nil, err
	}
	if len(rels) == 0 {
		if !d.take(depth) {
			return nil, nil
		}
		return &Branch{Kind: BranchNothingToWalk, Label: via, Object: obj, Relation: a.Tupleset}, nil
	}
	if !d.take(depth) {
		return nil, nil
	}
	b := &Branch{Kind: BranchArrow, Label: via, Object: obj, Relation: perm, Omitted: more}
	for i := range rels {
		r := &rels[i]
		c, err := d.edge(r, r.Subject.Object, a.Target, r.Subject.Object.String()+"#"+a.Target, false, depth+1)
		if err != nil {
			return nil, err
		}
		if c == nil {
			b.Omitted++
		} else if c.failed() || a.Func == schema.ArrowAny {
			b.Children = append(b.Children, c)
		}
	}
	return b, nil
}

// edge explains a relationship r leading to target#rel: expired, its
// caveat false, or target does not have rel. A direct relationship names
// the subject itself and leads nowhere further. A granting edge (of an
// .all arrow, say) is a BranchGranted.
func (d *denier) edge(r *graph.Relationship, target graph.ObjectRef, rel, label string, direct bool, depth int) (*Branch, error) {
	if d.full(depth) {
		return nil, nil // before the caveat is evaluated
	}
	if r.ExpiredAt(d.ev.now) {
		if !d.take(depth) {
			return nil, nil
		}
		return &Branch{Kind: BranchExpired, Label: label, Object: r.Resource, Relation: r.Relation, Relationship: r}, nil
	}
	c, err := d.ev.caveat(r)
	if err != nil {
		return nil, err
	}
	if c.perm == NoPermission {
		if !d.take(depth) {
			return nil, nil
		}
		return d.caveatFalse(r, label), nil
	}
	if direct {
		if !d.take(depth) {
			return nil, nil
		}
		return &Branch{Kind: BranchGranted, Label: label, Permissionship: c.perm, Object: r.Resource, Relation: r.Relation, Relationship: r}, nil
	}
	if def := d.ev.schema.Definitions[target.Type]; def == nil || (def.Relations[rel] == nil && def.Permissions[rel] == nil) {
		if !d.take(depth) {
			return nil, nil
		}
		return &Branch{Kind: BranchNoRelationship, Label: label, Object: target, Relation: rel}, nil
	}
	return d.named(target, rel, label, depth)
}

// caveatFalse reports r's false caveat with the values it was evaluated
// with: the request's, overridden by the relationship's.
func (d *denier) caveatFalse(r *graph.Relationship, label string) *Branch {
	b := &Branch{Kind: BranchCaveatFalse, Label: label, Object: r.Resource, Relation: r.Relation, Relationship: r, Caveat: r.Caveat.Name}
	if c := d.ev.schema.Caveats[r.Caveat.Name]; c != nil {
		for _, p := range c.Params {
			v, ok := r.Caveat.Context[p.Name]
			if !ok {
				v, ok = d.ev.caveatCtx[p.Name]
			}
			if ok {
				if b.Context == nil {
					b.Context = map[string]any{}
				}
				b.Context[p.Name] = v
			}
		}
	}
	return b
}

// relation explains relation r on obj: the relationships naming the
// subject (expired, or their caveat false) and those naming subject sets
// (and why each set does not have the subject). With one reason and no
// subject sets the reason stands for the relation.
func (d *denier) relation(obj graph.ObjectRef, r *schema.Relation, label string, depth int) (*Branch, error) {
	b := &Branch{Kind: BranchPermission, Label: label, Object: obj, Relation: r.Name}
	s := d.ev.subject
	ids := []string{s.Object.ID}
	if s.Relation == "" && s.Object.ID != graph.Wildcard && allowsWildcard(r, s.Object.Type) {
		ids = append(ids, graph.Wildcard)
	}
	srel := s.Relation
	filters := []*storage.SubjectFilter{{Type: s.Object.Type, IDs: ids, Relation: &srel}}
	for k, a := range r.Allowed {
		if a.Relation == "" || slices.ContainsFunc(r.Allowed[:k], func(x schema.AllowedSubject) bool {
			return x.Type == a.Type && x.Relation == a.Relation
		}) {
			continue
		}
		filters = append(filters, &storage.SubjectFilter{Type: a.Type, Relation: &a.Relation})
	}
	for _, f := range filters {
		rels, more, err := d.read(storage.Filter{ResourceType: obj.Type, ResourceIDs: []string{obj.ID}, Relation: r.Name, Subject: f})
		if err != nil {
			return nil, err
		}
		b.Omitted += more
		for i := range rels {
			rel := &rels[i]
			direct := f == filters[0]
			if !direct && rel.Subject == s {
				continue // read by the first filter
			}
			label := ""
			if !direct {
				label = rel.Subject.String()
			}
			c, err := d.edge(rel, rel.Subject.Object, rel.Subject.Relation, label, direct, depth+1)
			if err != nil {
				return nil, err
			}
			if c == nil {
				b.Omitted++
				continue
			}
			b.Children = append(b.Children, c)
		}
	}
	switch {
	case len(b.Children) == 0 && b.Omitted == 0:
		return &Branch{Kind: BranchNoRelationship, Label: label, Object: obj, Relation: r.Name}, nil
	case len(b.Children) == 1 && b.Omitted == 0 && b.Children[0].Label == "":
		c := b.Children[0]
		c.Label = label
		return c, nil
	}
	return b, nil
}

// read returns the relationships of f with expired ones visible, at most
// maxDenialReads, and how many more there are (at least).
func (d *denier) read(f storage.Filter) ([]graph.Relationship, int, error) {
	d.ev.eng.queries.Add(1)
	var out []graph.Relationship
	more := 0
	for r, err := range d.raw.QueryRelationships(d.ev.ctx, f, storage.QueryOptions{Now: sinceEver, Limit: maxDenialReads + 1}) {
		if err != nil {
			return nil, 0, fmt.Errorf("query %s#%s: %w", f.ResourceType, f.Relation, err)
		}
		if len(out) == maxDenialReads {
			more = 1
			break
		}
		out = append(out, r)
	}
	return out, more, nil
}
