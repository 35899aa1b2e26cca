// Package dataset generates the graphs Pemba is load-tested on, and the
// requests workers send against them.
//
// A Dataset is deterministic: the same name, Options.Seed and Options.Scale
// always yield the same schema and the same relationships in the same order,
// so a figure in BENCHMARKS.md can be reproduced exactly. Scale multiplies
// every object count (a few fixed categories such as sensitivity tiers and
// environments do not scale). Relationships are streamed, never held in
// memory as a whole, so a million-relationship graph costs little to load.
//
// A Sampler draws requests (checks, hot checks, lookups, expands, writes)
// over the same objects; each worker owns one, seeded independently, because
// a Sampler is not safe for concurrent use. The package performs no I/O.
package dataset
