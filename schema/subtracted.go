package schema

// Subtracted lists, sorted, the nodes named on the subtracted side of an
// exclusion in a permission on the paths (the target's included): what a
// check of an object the paths lead to may have to evaluate although no
// path holds it (`project->suspended` in `read = viewer - project->suspended`).
// An arrow names its target on every type its tupleset allows.
func (p *Paths) Subtracted() []Node {
	p.subtractedOnce.Do(func() {
		seen := map[Node]bool{}
		for n := range p.reaches {
			def := p.r.defs[n.Type]
			if def == nil || def.Permissions[n.Relation] == nil {
				continue
			}
			p.r.subtractedIn(def, def.Permissions[n.Relation].Expr, false, seen)
		}
		for n := range seen {
			p.subtracted = append(p.subtracted, n)
		}
		sortNodes(p.subtracted)
	})
	return p.subtracted
}

// subtractedIn adds to seen the nodes x names on a subtracted side (all of
// them when negative: x is itself on one).
func (r *Reachability) subtractedIn(def *Definition, x Expr, negative bool, seen map[Node]bool) {
	switch x := x.(type) {
	case *Union:
		for _, c := range x.Children {
			r.subtractedIn(def, c, negative, seen)
		}
	case *Intersection:
		for _, c := range x.Children {
			r.subtractedIn(def, c, negative, seen)
		}
	case *Exclusion:
		r.subtractedIn(def, x.Base, negative, seen)
		r.subtractedIn(def, x.Subtracted, true, seen)
	case *RelationRef:
		if negative {
			seen[Node{def.Name, x.Name}] = true
		}
	case *Arrow:
		if !negative || def.Relations[x.Tupleset] == nil {
			return
		}
		for _, a := range def.Relations[x.Tupleset].Allowed {
			if t := r.defs[a.Type]; t != nil && (t.Relations[x.Target] != nil || t.Permissions[x.Target] != nil) {
				seen[Node{a.Type, x.Target}] = true
			}
		}
	}
}
