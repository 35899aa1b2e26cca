package schema

import "strings"

// This file is the syntax tree Parse produces: the schema as written, with
// positions and comments, before any name is resolved. The formatter prints
// it; the compiler turns it into a *Schema.

// AST is a parsed schema file.
type AST struct {
	File string
	// Items are the top-level declarations in source order: *UseDecl,
	// *DefinitionDecl and *CaveatDecl.
	Items []Decl
	// Trailing holds comments after the last declaration.
	Trailing []string
}

// Decl is a top-level declaration.
type Decl interface{ declPos() Position }

// UseDecl is `use flag`.
type UseDecl struct {
	Pos      Position
	Comments []string
	// LineComment holds comments after the declaration on its last line.
	LineComment string
	Flag        string
	FlagPos     Position
}

// DefinitionDecl is `definition name { ... }`.
type DefinitionDecl struct {
	Pos      Position
	Comments []string // comments directly above, as written
	// LineComment holds comments after the declaration on its last line.
	LineComment string
	Name        string
	NamePos     Position
	// Members are *RelationDecl and *PermissionDecl in source order.
	Members []Member
	// Trailing holds comments after the last member, before '}'.
	Trailing []string
	// broken names members whose declaration had a syntax error; the
	// compiler treats references to them as resolved, to report only the
	// syntax error.
	broken []string
}

// Member is a relation or permission inside a definition.
type Member interface{ memberName() string }

// RelationDecl is `relation name: type | type ...`.
type RelationDecl struct {
	Pos      Position
	Comments []string
	// LineComment holds comments after the declaration on its last line.
	LineComment string
	Name        string
	NamePos     Position
	Types       []*TypeRef
}

// TypeRef is one allowed subject type of a relation.
type TypeRef struct {
	Pos         Position
	Type        string
	Relation    string // `type#relation`
	RelationPos Position
	Wildcard    bool // `type:*`
	Caveat      string
	CaveatPos   Position
	Expiration  bool
	// ExpirationPos is where `expiration` was written after `with`.
	ExpirationPos Position
}

// PermissionDecl is `permission name = expr`.
type PermissionDecl struct {
	Pos      Position
	Comments []string
	// LineComment holds comments after the declaration on its last line.
	LineComment string
	Name        string
	NamePos     Position
	Expr        ExprNode // nil when the expression failed to parse
}

// CaveatDecl is `caveat name(params) { expression }`.
type CaveatDecl struct {
	Pos      Position
	Comments []string
	// LineComment holds comments after the declaration on its last line.
	LineComment string
	Name        string
	NamePos     Position
	Params      []*ParamDecl
	// Body is the CEL expression, normalized: surrounding blank lines and
	// the common indentation removed.
	Body    string
	BodyPos Position // where the first line of Body starts
	// bodyIndent is the indentation removed from lines after the first,
	// used to map CEL error columns back to the source.
	bodyIndent int
}

// ParamDecl is one caveat parameter: `name type`.
type ParamDecl struct {
	Pos  Position
	Name string
	Type *TypeExpr
}

// TypeExpr is a caveat parameter type: `int`, `list<string>`, ...
type TypeExpr struct {
	Pos  Position
	Name string
	Args []*TypeExpr
}

// String prints the type in canonical form.
func (t *TypeExpr) String() string {
	if t == nil {
		return ""
	}
	if len(t.Args) == 0 {
		return t.Name
	}
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t *TypeExpr) write(b *strings.Builder) {
	if t == nil {
		return
	}
	b.WriteString(t.Name)
	if len(t.Args) == 0 {
		return
	}
	b.WriteByte('<')
	for i, a := range t.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		a.write(b)
	}
	b.WriteByte('>')
}

// ExprNode is a permission expression as written: *BinaryNode, *NameNode,
// *ArrowNode or *NilNode.
type ExprNode interface{ exprPos() Position }

// BinaryOp is a set operator.
type BinaryOp int

const (
	OpUnion        BinaryOp = iota // +
	OpIntersection                 // &
	OpExclusion                    // -
)

// String returns the operator's symbol.
func (o BinaryOp) String() string { return [...]string{"+", "&", "-"}[o] }

// BinaryNode is `left op right`.
type BinaryNode struct {
	Pos         Position // position of the operator
	Op          BinaryOp
	Left, Right ExprNode
	// Parens records that the author wrote parentheses around this
	// operation, needed or not: formatting keeps them, since they are
	// often there to make the precedence plain to readers.
	Parens bool
}

// NameNode names a relation or permission on the same definition.
type NameNode struct {
	Pos  Position
	Name string
}

// ArrowNode is `tupleset->target`, `tupleset.any(target)` or
// `tupleset.all(target)`.
type ArrowNode struct {
	Pos       Position // position of the tupleset name
	Tupleset  string
	Func      ArrowFunc
	Arrow     bool // written with `->`
	Target    string
	TargetPos Position
}

// NilNode is `nil`.
type NilNode struct{ Pos Position }

func (d *UseDecl) declPos() Position        { return d.Pos }
func (d *DefinitionDecl) declPos() Position { return d.Pos }
func (d *CaveatDecl) declPos() Position     { return d.Pos }

func (m *RelationDecl) memberName() string   { return m.Name }
func (m *PermissionDecl) memberName() string { return m.Name }

func (e *BinaryNode) exprPos() Position { return e.Pos }
func (e *NameNode) exprPos() Position   { return e.Pos }
func (e *ArrowNode) exprPos() Position  { return e.Pos }
func (e *NilNode) exprPos() Position    { return e.Pos }
