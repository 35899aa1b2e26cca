// Package dispatch holds the resolver layers of the query engine: a
// Resolver answers one batched sub-problem ("does this subject have this
// relation on each of these resources, at this revision?"), and layers wrap
// each other — Cache in front of Singleflight in front of the engine's
// local evaluator, which sends its own sub-problems back through the top.
//
// The layers know nothing about schemas or storage: they key, share and
// store Answers, and only those Answer.Shareable allows (the rule for
// cycles and reuse is stated once, on Frame). The per-request scope type
// S is opaque to them and passed through unchanged to the innermost
// resolver, and so is Problem.Depth.
//
// Why here and not in graph/: graph is the relationship model every package
// imports; resolver layers depend on storage revisions and on the engine's
// request scope, so they live under the engine that owns them.
package dispatch
