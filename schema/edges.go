package schema

// This file bounds the reachability graph at compile time. An arrow
// `rel->target` in a permission becomes one edge per allowed subject type
// of rel that declares target, so a few kilobytes of arrows over a
// relation allowing many types would build a graph of millions of edges
// (hundreds of megabytes) on the first reverse lookup. The compiler counts
// those edges, and the cost of counting does not grow with the product.

// arrowKey identifies an arrow within a permission; a permission's edges
// depend only on its distinct arrows.
type arrowKey struct {
	tupleset, target string
	fn               ArrowFunc
}

// arrowEdgeCounter counts the reachability edges arrows expand to. Its
// maps are filled on demand and shared by the whole compilation.
type arrowEdgeCounter struct {
	c *compiler
	// total is the edges counted so far; reported says the limit error has
	// been given.
	total    int
	reported bool
	// declaredOn maps a member name to the definitions declaring it.
	declaredOn map[string][]string
	// allowed maps a definition's relation to its allowed subject types,
	// each with the number of entries naming it (`user` and
	// `user with cav` are two).
	allowed map[[2]string]map[string]int
	// counts memoizes count by definition, relation and target.
	counts map[[3]string]int
}

// count returns the edges `rel->target` on definition def expands to: the
// entries of rel's allowed types whose definition declares target. It
// walks the smaller of rel's types and target's declarers.
func (a *arrowEdgeCounter) count(def string, rel *RelationDecl, target string) int {
	key := [3]string{def, rel.Name, target}
	if n, ok := a.counts[key]; ok {
		return n
	}
	if a.declaredOn == nil {
		a.declaredOn = map[string][]string{}
		for typ, members := range a.c.members {
			for name := range members {
				a.declaredOn[name] = append(a.declaredOn[name], typ)
			}
		}
		a.allowed = map[[2]string]map[string]int{}
		a.counts = map[[3]string]int{}
	}
	types, ok := a.allowed[[2]string{def, rel.Name}]
	if !ok {
		types = map[string]int{}
		for _, t := range rel.Types {
			types[t.Type]++
		}
		a.allowed[[2]string{def, rel.Name}] = types
	}
	n := 0
	if declarers := a.declaredOn[target]; len(declarers) < len(types) {
		for _, typ := range declarers {
			n += types[typ]
		}
	} else {
		for typ, entries := range types {
			if _, has := a.c.members[typ][target]; has {
				n += entries
			}
		}
	}
	a.counts[key] = n
	return n
}

// permission adds the edges of p's distinct arrows, reporting once when
// the schema's total passes MaxArrowEdges.
func (a *arrowEdgeCounter) permission(d *DefinitionDecl, p *PermissionDecl) {
	seen := map[arrowKey]bool{}
	walkArrows(p.Expr, func(e *ArrowNode) {
		k := arrowKey{e.Tupleset, e.Target, e.Func}
		rel, isRel := a.c.members[d.Name][e.Tupleset].(*RelationDecl)
		if seen[k] || !isRel {
			return
		}
		seen[k] = true
		a.total += a.count(d.Name, rel, e.Target)
	})
	if a.total > MaxArrowEdges && !a.reported {
		a.reported = true
		a.c.errs.add(p.NamePos, "", "the schema's arrows expand to more than the limit of %d edges (one per arrow and subject type declaring its target); permission %q on definition %q passes it", MaxArrowEdges, p.Name, d.Name)
	}
}
