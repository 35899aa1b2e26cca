// Package schema implements Pemba's schema language, compatible with
// SpiceDB's: parsing, compiling to an immutable typed *Schema, caveats in CEL,
// a canonical formatter, schema diffs, reachability for reverse lookups and
// dependencies between relations and permissions.
//
// Callers compile source text with Compile and share the result freely; the
// package performs no I/O. A compile error is an *ErrorList holding every
// problem in the file, each with a position and, for near-miss names, a
// suggestion. Parse and Format work on the syntax tree (comments kept) for
// tools that rewrite schema files; Schema.String prints a compiled schema.
//
// For the query engine: Schema.Definition and Definition.Lookup resolve
// names, Caveat.Evaluate decides caveats for a (possibly partial) context,
// and Schema.Reachability().Toward(target) says which edges lead from a
// subject's node to a resource's permission. Compare tells a schema writer
// which stored relationships a new schema would orphan, and which doc
// comments changed. For tools: Schema.DependentRelations lists what a
// permission is computed from, Schema.ComputablePermissions what a
// relation feeds.
package schema
