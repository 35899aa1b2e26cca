package schema

// Limits on schema text. A schema arrives from the network (WriteSchema and
// the dry-run diff), so every dimension that drives the parser's recursion
// or the compiler's work is bounded, and each limit is named in the error
// that enforces it. Compile, CompileAST's parser and Parse apply them alike.
const (
	// MaxSchemaBytes bounds the size of one schema file.
	MaxSchemaBytes = 1 << 20

	// MaxNestingDepth bounds how deeply parentheses nest in a permission
	// expression, and type arguments in a caveat parameter type
	// (`list<map<...>>`). The parser recurses once per level.
	MaxNestingDepth = 64

	// MaxExpressionTerms bounds the operands (relations, permissions,
	// arrows and nil) of one permission expression. An operator chain
	// `a + b + ...` is a tree as deep as it is long, and every check of the
	// permission visits each term.
	MaxExpressionTerms = 10_000

	// MaxArrowEdges bounds the edges a schema's arrows expand to in its
	// reachability graph: an arrow `rel->target` in a permission is one
	// edge per allowed subject type of rel that declares target. Without
	// it, a few kilobytes of arrows over a relation allowing thousands of
	// types build a graph of hundreds of megabytes on the first lookup.
	MaxArrowEdges = 250_000

	// MaxCaveatExpressionBytes bounds the CEL text of one caveat body, and
	// MaxSchemaCaveatBytes that of all caveat bodies in a schema. Compiling
	// CEL costs tens of microseconds per byte for adversarial expressions
	// and a tenth of a millisecond per caveat; CEL's parser applies its
	// own nesting limit (250) within.
	MaxCaveatExpressionBytes = 4 << 10
	MaxSchemaCaveatBytes     = 64 << 10

	// maxReportedErrors bounds the errors (and, separately, the warnings)
	// one compilation reports. Later problems are dropped, after a final
	// error saying so, and no suggestions are computed for them.
	maxReportedErrors = 100

	// maxSnippetBytes bounds the source shown in an error's caret snippet:
	// a schema on one long line must not repeat itself in every error.
	maxSnippetBytes = 160
)
