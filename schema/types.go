package schema

// This file is the compiled, immutable form of a schema: the contract
// between the compiler and every consumer (query engine, storage validation,
// server). A *Schema returned by Compile is fully resolved: every type,
// relation, permission and caveat it names exists, and it is never mutated
// afterwards, so it may be shared between goroutines.

// Position is a 1-based line and column in a schema source file.
type Position struct {
	Line   int
	Column int
}

// Schema is a compiled schema.
type Schema struct {
	// Definitions by name; DefinitionOrder keeps source order.
	Definitions     map[string]*Definition
	DefinitionOrder []string
	// Caveats by name; CaveatOrder keeps source order.
	Caveats     map[string]*Caveat
	CaveatOrder []string
	// Flags enabled with `use` (e.g. "expiration").
	Flags []string

	// warnings are problems SpiceDB accepts that are likely mistakes.
	warnings ErrorList
	// reach holds the reachability graph, built on first use.
	reach *lazyReachability
}

// Definition is an object type: its relations and permissions.
type Definition struct {
	Name        string
	Doc         string
	Pos         Position
	Relations   map[string]*Relation
	Permissions map[string]*Permission
	// Order lists relation and permission names in source order.
	Order []string
}

// Relation is a stored relation with the subject types it accepts.
type Relation struct {
	Name    string
	Doc     string
	Pos     Position
	Allowed []AllowedSubject
}

// AllowedSubject is one alternative in a relation's type list:
// `user`, `group#member`, `user:*`, `user with caveat`,
// `user with expiration`, `user with caveat and expiration`.
type AllowedSubject struct {
	Type       string
	Relation   string // "" for a plain object type
	Wildcard   bool   // `type:*`
	Caveat     string // "" when no caveat is required
	Expiration bool   // `with expiration`
}

// Permission is a computed relation defined by an expression.
type Permission struct {
	Name string
	Doc  string
	Pos  Position
	Expr Expr
}

// Expr is a permission expression node: *Union, *Intersection, *Exclusion,
// *RelationRef, *Arrow or *Nil.
type Expr interface{ isExpr() }

// Union grants when any child grants (`a + b`).
type Union struct{ Children []Expr }

// Intersection grants when every child grants (`a & b`).
type Intersection struct{ Children []Expr }

// Exclusion grants when Base grants and Subtracted does not (`a - b`).
type Exclusion struct{ Base, Subtracted Expr }

// RelationRef names a relation or permission on the same object (a
// computed userset).
type RelationRef struct{ Name string }

// ArrowFunc says how an arrow combines the objects its tupleset reaches.
type ArrowFunc int

const (
	// ArrowAny grants when any related object grants (`a->b`, `a.any(b)`).
	ArrowAny ArrowFunc = iota
	// ArrowAll grants when every related object grants (`a.all(b)`).
	ArrowAll
)

// Arrow walks Tupleset (a relation on this object) and evaluates Target (a
// relation or permission) on each object it reaches.
type Arrow struct {
	Tupleset string
	Target   string
	Func     ArrowFunc
}

// Nil never grants.
type Nil struct{}

func (*Union) isExpr()        {}
func (*Intersection) isExpr() {}
func (*Exclusion) isExpr()    {}
func (*RelationRef) isExpr()  {}
func (*Arrow) isExpr()        {}
func (*Nil) isExpr()          {}

// CaveatParam is one typed parameter of a caveat, e.g. `ip ipaddress`
// or `allowed list<string>`.
type CaveatParam struct {
	Name string
	Type string // canonical type text: "int", "list<string>", "map<bool>", ...
}

// CaveatOutcome is the result of evaluating a caveat with possibly
// incomplete context: either decided (Satisfied true/false, Missing empty)
// or undecided, with Missing naming the parameters that would decide it.
type CaveatOutcome struct {
	Satisfied bool
	Missing   []string
}

// Decided reports whether the caveat could be evaluated to true or false.
func (o CaveatOutcome) Decided() bool { return len(o.Missing) == 0 }

// Caveat is a compiled CEL condition with typed parameters.
// Evaluate (caveat.go) decides it for a context.
type Caveat struct {
	Name       string
	Doc        string
	Pos        Position
	Params     []CaveatParam
	Expression string // the CEL source, as written
	program    *caveatProgram
}
