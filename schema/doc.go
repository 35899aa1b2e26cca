// Package schema implements Pemba's schema language, compatible with
// SpiceDB's: parsing, compiling to an immutable typed *Schema, caveats in CEL,
// a canonical formatter, schema diffs and reachability for reverse lookups.
//
// Callers compile source text with Compile and share the result freely; the
// package performs no I/O.
package schema
