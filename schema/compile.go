package schema

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/pembadb/pemba/graph"
)

// Flags a schema may enable with `use`.
var knownFlags = []string{"expiration"}

// paramNamePattern is a CEL identifier. Type, relation and caveat names
// follow graph's rules, so every name a schema declares can appear in a
// relationship.
var paramNamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Compile parses and compiles a schema file. The error, when non-nil, is
// an *ErrorList holding every problem found in the file.
func Compile(filename, src string) (*Schema, error) {
	sink := newErrorSink(filename, src)
	ast := parse(filename, src, sink)
	s := compileAST(ast, sink)
	if err := sink.result(); err != nil {
		return nil, err
	}
	return s, nil
}

// CompileAST compiles an already parsed schema. src is the text it was
// parsed from, used only for the source lines in error snippets ("" leaves
// them out).
func CompileAST(ast *AST, src string) (*Schema, error) {
	sink := newErrorSink(ast.File, src)
	s := compileAST(ast, sink)
	if err := sink.result(); err != nil {
		return nil, err
	}
	return s, nil
}

// compiler holds the state of one compilation.
type compiler struct {
	errs   *errorSink
	schema *Schema
	flags  map[string]bool
	// members maps definition name → member name → declaration, filled
	// before any reference is resolved.
	members map[string]map[string]Member
	// warnings are problems SpiceDB accepts but that are likely mistakes.
	warnings *errorSink
	// broken maps definition name → names of members with syntax errors,
	// which references may use without a further error.
	broken map[string]map[string]bool
	// caveatsDeclared names every caveat declared, compiled or not, so a
	// caveat with errors is not also reported as unknown where it is used.
	caveatsDeclared map[string]bool
	// arrowEdges counts the reachability edges arrows expand to.
	arrowEdges arrowEdgeCounter
	// caveatBytes is the CEL text of the caveats compiled so far.
	caveatBytes int
}

func compileAST(ast *AST, sink *errorSink) *Schema {
	c := &compiler{
		errs: sink,
		schema: &Schema{
			Definitions: map[string]*Definition{},
			Caveats:     map[string]*Caveat{},
		},
		flags:           map[string]bool{},
		members:         map[string]map[string]Member{},
		caveatsDeclared: map[string]bool{},
		broken:          map[string]map[string]bool{},
		warnings:        &errorSink{file: sink.file, lines: sink.lines, noun: "warnings"},
	}
	c.arrowEdges.c = c
	c.useFlags(ast)
	defs, caveats := c.declare(ast)
	for _, d := range caveats {
		if cv := c.caveat(d); cv != nil {
			c.schema.Caveats[cv.Name] = cv
			c.schema.CaveatOrder = append(c.schema.CaveatOrder, cv.Name)
		}
	}
	for _, d := range defs {
		c.definition(d)
	}
	c.checkWildcards(defs)
	if len(c.errs.errs) > 0 {
		return nil
	}
	c.schema.warnings = sortedErrors(c.warnings)
	c.schema.reach = &lazyReachability{}
	return c.schema
}

func sortedErrors(s *errorSink) ErrorList {
	if err := s.result(); err != nil {
		return *err.(*ErrorList)
	}
	return nil
}

func (c *compiler) useFlags(ast *AST) {
	for _, item := range ast.Items {
		u, ok := item.(*UseDecl)
		if !ok {
			continue
		}
		known := false
		for _, f := range knownFlags {
			known = known || f == u.Flag
		}
		if !known {
			c.errs.add(u.FlagPos, suggest(u.Flag, knownFlags), "unknown flag %q in \"use\" (known flags: %s)", u.Flag, strings.Join(knownFlags, ", "))
			continue
		}
		if !c.flags[u.Flag] {
			c.flags[u.Flag] = true
			c.schema.Flags = append(c.schema.Flags, u.Flag)
		}
	}
}

// declare registers definition and caveat names, which share one
// namespace, and the member names of each definition.
func (c *compiler) declare(ast *AST) ([]*DefinitionDecl, []*CaveatDecl) {
	type first struct {
		kind string
		pos  Position
	}
	seen := map[string]first{}
	var defs []*DefinitionDecl
	var caveats []*CaveatDecl
	claim := func(kind, name string, pos Position) bool {
		if f, dup := seen[name]; dup {
			c.errs.add(pos, "", "duplicate name %q: already declared as a %s at line %d", name, f.kind, f.pos.Line)
			return false
		}
		seen[name] = first{kind, pos}
		return true
	}
	for _, item := range ast.Items {
		switch d := item.(type) {
		case *DefinitionDecl:
			if err := graph.ValidateTypeName(d.Name); err != nil {
				// Reported, but still declared so references to it do not
				// cascade into more errors.
				c.errs.add(d.NamePos, "", "definition: %v", err)
			}
			if !claim("definition", d.Name, d.NamePos) {
				continue
			}
			defs = append(defs, d)
			members := map[string]Member{}
			c.members[d.Name] = members
			for _, name := range d.broken {
				if c.broken[d.Name] == nil {
					c.broken[d.Name] = map[string]bool{}
				}
				c.broken[d.Name][name] = true
			}
			for _, m := range d.Members {
				name, pos := memberNamePos(m)
				if err := graph.ValidateRelationName(name); err != nil {
					c.errs.add(pos, "", "%s: %v", memberKind(m), err)
				} else if name == "nil" {
					c.errs.add(pos, "", "%s name \"nil\" is reserved: in expressions it means the empty set", memberKind(m))
				}
				if prev, dup := members[name]; dup {
					_, prevPos := memberNamePos(prev)
					c.errs.add(pos, "", "duplicate %s %q on definition %q: already declared as a %s at line %d", memberKind(m), name, d.Name, memberKind(prev), prevPos.Line)
					continue
				}
				members[name] = m
			}
		case *CaveatDecl:
			if err := graph.ValidateCaveatName(d.Name); err != nil {
				c.errs.add(d.NamePos, "", "caveat: %v", err)
			}
			if claim("caveat", d.Name, d.NamePos) {
				caveats = append(caveats, d)
				c.caveatsDeclared[d.Name] = true
			}
		}
	}
	return defs, caveats
}

func memberNamePos(m Member) (string, Position) {
	switch m := m.(type) {
	case *RelationDecl:
		return m.Name, m.NamePos
	case *PermissionDecl:
		return m.Name, m.NamePos
	}
	return "", Position{}
}

func memberKind(m Member) string {
	if _, ok := m.(*PermissionDecl); ok {
		return "permission"
	}
	return "relation"
}

func joinComments(cs []string) string { return strings.Join(cs, "\n") }

func (c *compiler) definition(d *DefinitionDecl) {
	def := &Definition{
		Name:        d.Name,
		Doc:         joinComments(d.Comments),
		Pos:         d.Pos,
		Relations:   map[string]*Relation{},
		Permissions: map[string]*Permission{},
	}
	members := c.members[d.Name]
	for _, m := range d.Members {
		name, _ := memberNamePos(m)
		if members[name] != m {
			continue // invalid or duplicate, already reported
		}
		switch m := m.(type) {
		case *RelationDecl:
			def.Relations[name] = c.relation(d, m)
		case *PermissionDecl:
			p := &Permission{Name: name, Doc: joinComments(m.Comments), Pos: m.Pos}
			if m.Expr != nil {
				p.Expr = c.expr(d, m, m.Expr)
				c.arrowEdges.permission(d, m)
			}
			def.Permissions[name] = p
		}
		def.Order = append(def.Order, name)
	}
	c.schema.Definitions[d.Name] = def
	c.schema.DefinitionOrder = append(c.schema.DefinitionOrder, d.Name)
}

func (c *compiler) definitionNames() []string {
	names := make([]string, 0, len(c.members))
	for n := range c.members {
		names = append(names, n)
	}
	return names
}

func (c *compiler) caveatNames() []string {
	return append([]string(nil), c.schema.CaveatOrder...)
}

func memberNames(members map[string]Member, want func(Member) bool) []string {
	var names []string
	for n, m := range members {
		if want == nil || want(m) {
			names = append(names, n)
		}
	}
	return names
}

func (c *compiler) relation(d *DefinitionDecl, r *RelationDecl) *Relation {
	rel := &Relation{Name: r.Name, Doc: joinComments(r.Comments), Pos: r.Pos}
	if len(r.Types) == 0 {
		c.errs.add(r.NamePos, "", "relation %q on definition %q has no allowed subject types: write `relation %s: user` or similar", r.Name, d.Name, r.Name)
		return rel
	}
	seen := map[AllowedSubject]bool{}
	for _, t := range r.Types {
		a, ok := c.allowedSubject(d, r, t)
		if !ok {
			continue
		}
		if seen[a] {
			c.errs.add(t.Pos, "", "duplicate allowed subject type %q in relation %q on definition %q", allowedString(a), r.Name, d.Name)
			continue
		}
		seen[a] = true
		rel.Allowed = append(rel.Allowed, a)
	}
	return rel
}

func (c *compiler) allowedSubject(d *DefinitionDecl, r *RelationDecl, t *TypeRef) (AllowedSubject, bool) {
	a := AllowedSubject{Type: t.Type, Relation: t.Relation, Wildcard: t.Wildcard, Caveat: t.Caveat, Expiration: t.Expiration}
	ok := true
	target, known := c.members[t.Type]
	if !known {
		c.errs.add(t.Pos, hint(c.errs, t.Type, c.definitionNames), "unknown type %q in relation %q on definition %q", t.Type, r.Name, d.Name)
		ok = false
	} else if t.Relation != "" && !c.broken[t.Type][t.Relation] {
		if _, has := target[t.Relation]; !has {
			c.errs.add(t.RelationPos, hint(c.errs, t.Relation, func() []string { return memberNames(target, nil) }), "relation or permission %q not found on definition %q", t.Relation, t.Type)
			ok = false
		}
	}
	if t.Caveat != "" {
		if _, has := c.schema.Caveats[t.Caveat]; !has && !c.caveatsDeclared[t.Caveat] {
			if _, declared := c.members[t.Caveat]; declared {
				c.errs.add(t.CaveatPos, "", "%q after \"with\" is a definition, not a caveat", t.Caveat)
			} else {
				c.errs.add(t.CaveatPos, hint(c.errs, t.Caveat, c.caveatNames), "unknown caveat %q in relation %q on definition %q", t.Caveat, r.Name, d.Name)
			}
			ok = false
		}
	}
	if t.Expiration && !c.flags["expiration"] {
		c.errs.add(t.ExpirationPos, "", "\"with expiration\" requires \"use expiration\" at the top of the schema")
		ok = false
	}
	return a, ok
}

// allowedString prints an allowed subject type as the schema writes it.
func allowedString(a AllowedSubject) string {
	s := a.Type
	switch {
	case a.Wildcard:
		s += ":*"
	case a.Relation != "":
		s += "#" + a.Relation
	}
	switch {
	case a.Caveat != "" && a.Expiration:
		s += " with " + a.Caveat + " and expiration"
	case a.Caveat != "":
		s += " with " + a.Caveat
	case a.Expiration:
		s += " with expiration"
	}
	return s
}

// String prints the allowed subject type in schema syntax.
func (a AllowedSubject) String() string { return allowedString(a) }

func (c *compiler) expr(d *DefinitionDecl, p *PermissionDecl, e ExprNode) Expr {
	members := c.members[d.Name]
	switch e := e.(type) {
	case *NilNode:
		return &Nil{}
	case *NameNode:
		if _, ok := members[e.Name]; !ok && !c.broken[d.Name][e.Name] {
			c.errs.add(e.Pos, hint(c.errs, e.Name, func() []string { return memberNames(members, nil) }), "relation or permission %q not found on definition %q", e.Name, d.Name)
		}
		return &RelationRef{Name: e.Name}
	case *ArrowNode:
		c.arrow(d, p, e)
		return &Arrow{Tupleset: e.Tupleset, Target: e.Target, Func: e.Func}
	case *BinaryNode:
		left, right := c.expr(d, p, e.Left), c.expr(d, p, e.Right)
		switch e.Op {
		case OpUnion:
			return &Union{Children: append(unionChildren(left), unionChildren(right)...)}
		case OpIntersection:
			return &Intersection{Children: append(intersectionChildren(left), intersectionChildren(right)...)}
		default:
			return &Exclusion{Base: left, Subtracted: right}
		}
	}
	return &Nil{}
}

func unionChildren(e Expr) []Expr {
	if u, ok := e.(*Union); ok {
		return u.Children
	}
	return []Expr{e}
}

func intersectionChildren(e Expr) []Expr {
	if i, ok := e.(*Intersection); ok {
		return i.Children
	}
	return []Expr{e}
}

func (c *compiler) arrow(d *DefinitionDecl, p *PermissionDecl, e *ArrowNode) {
	members := c.members[d.Name]
	m, ok := members[e.Tupleset]
	if !ok && c.broken[d.Name][e.Tupleset] {
		return
	}
	if !ok {
		isRel := func(m Member) bool { _, ok := m.(*RelationDecl); return ok }
		c.errs.add(e.Pos, hint(c.errs, e.Tupleset, func() []string { return memberNames(members, isRel) }), "relation %q not found on definition %q (left side of an arrow in permission %q)", e.Tupleset, d.Name, p.Name)
		return
	}
	rel, isRel := m.(*RelationDecl)
	if !isRel {
		c.errs.add(e.Pos, "", "the left side of an arrow must be a relation, but %q is a permission (in permission %q on definition %q)", e.Tupleset, p.Name, d.Name)
		return
	}
	// SpiceDB accepts an arrow whose target exists on only some of the
	// tupleset's subject types (the others contribute nothing), and warns
	// when it exists on none of them.
	if c.arrowEdges.count(d.Name, rel, e.Target) > 0 || c.warnings.full() {
		return
	}
	var types []string
	for _, t := range rel.Types {
		if _, ok := c.members[t.Type]; ok {
			types = append(types, t.Type)
		}
	}
	if len(types) > 0 {
		candidates := func() []string {
			var names []string
			for _, t := range types {
				names = append(names, memberNames(c.members[t], nil)...)
			}
			return names
		}
		c.warnings.add(e.TargetPos, hint(c.warnings, e.Target, candidates), "arrow %s->%s in permission %q on definition %q: no subject type of relation %q (%s) has a relation or permission %q", e.Tupleset, e.Target, p.Name, d.Name, e.Tupleset, strings.Join(uniqueSorted(types), ", "), e.Target)
	}
}

func uniqueSorted(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	n := 0
	for i, x := range out {
		if i == 0 || x != out[n-1] {
			out[n] = x
			n++
		}
	}
	return out[:n]
}

// checkWildcards enforces SpiceDB's rules on wildcards: a subject set
// `t#r` may not pull in a wildcard through r, and the relation on the left
// of an arrow may not allow a wildcard, directly or through subject sets.
func (c *compiler) checkWildcards(defs []*DefinitionDecl) {
	memo := map[[2]string]string{}
	for _, d := range defs {
		for _, m := range d.Members {
			switch m := m.(type) {
			case *RelationDecl:
				for _, t := range m.Types {
					if t.Relation == "" {
						continue
					}
					if via := c.wildcardVia(t.Type, t.Relation, memo, map[[2]string]bool{}); via != "" {
						c.errs.add(t.Pos, "", "relation %q on definition %q allows %s#%s, which includes %s: wildcards cannot be included through a subject set", m.Name, d.Name, t.Type, t.Relation, via)
					}
				}
			case *PermissionDecl:
				walkArrows(m.Expr, func(a *ArrowNode) {
					if _, ok := c.members[d.Name][a.Tupleset].(*RelationDecl); !ok {
						return
					}
					if via := c.wildcardVia(d.Name, a.Tupleset, memo, map[[2]string]bool{}); via != "" {
						c.errs.add(a.Pos, "", "relation %q on definition %q is used on the left side of an arrow in permission %q but includes %s: wildcards cannot be used on the left side of arrows", a.Tupleset, d.Name, m.Name, via)
					}
				})
			}
		}
	}
}

// wildcardVia describes the wildcard typ#rel allows, directly or through
// subject sets, or returns "".
func (c *compiler) wildcardVia(typ, rel string, memo map[[2]string]string, visiting map[[2]string]bool) string {
	key := [2]string{typ, rel}
	if v, ok := memo[key]; ok {
		return v
	}
	if visiting[key] {
		return ""
	}
	visiting[key] = true
	r, ok := c.members[typ][rel].(*RelationDecl)
	result := ""
	if ok {
		for _, t := range r.Types {
			if t.Wildcard {
				result = fmt.Sprintf("the wildcard %s:* (allowed by %s#%s)", t.Type, typ, rel)
				break
			}
			if t.Relation != "" {
				if v := c.wildcardVia(t.Type, t.Relation, memo, visiting); v != "" {
					result = v
					break
				}
			}
		}
	}
	memo[key] = result
	return result
}

func walkArrows(e ExprNode, f func(*ArrowNode)) {
	switch e := e.(type) {
	case *ArrowNode:
		f(e)
	case *BinaryNode:
		walkArrows(e.Left, f)
		walkArrows(e.Right, f)
	}
}

// ExprString prints a compiled expression in canonical schema syntax.
func ExprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e, 0)
	return b.String()
}

// writeExpr writes e, parenthesized when its precedence is lower than the
// context's (0 loosest: exclusion, 1 intersection, 2 union, 3 atoms). One
// builder keeps it linear: an exclusion chain is as deep as it is long.
func writeExpr(b *strings.Builder, e Expr, ctx int) {
	open := func(prec int) {
		if prec < ctx {
			b.WriteByte('(')
		}
	}
	closing := func(prec int) {
		if prec < ctx {
			b.WriteByte(')')
		}
	}
	switch e := e.(type) {
	case *Nil:
		b.WriteString("nil")
	case *RelationRef:
		b.WriteString(e.Name)
	case *Arrow:
		b.WriteString(e.Tupleset)
		if e.Func == ArrowAll {
			b.WriteString(".all(" + e.Target + ")")
		} else {
			b.WriteString("->" + e.Target)
		}
	case *Union:
		open(2)
		for i, ch := range e.Children {
			if i > 0 {
				b.WriteString(" + ")
			}
			writeExpr(b, ch, 3)
		}
		closing(2)
	case *Intersection:
		open(1)
		for i, ch := range e.Children {
			if i > 0 {
				b.WriteString(" & ")
			}
			writeExpr(b, ch, 2)
		}
		closing(1)
	case *Exclusion:
		open(0)
		writeExpr(b, e.Base, 0)
		b.WriteString(" - ")
		writeExpr(b, e.Subtracted, 1)
		closing(0)
	default:
		b.WriteString("<invalid>")
	}
}
