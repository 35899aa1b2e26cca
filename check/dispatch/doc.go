// Package dispatch holds the resolver layers of the query engine: a
// Resolver answers one batched sub-problem ("does this subject have this
// relation on each of these resources, at this revision?"), and layers wrap
// each other — Cache in front of Singleflight in front of Remote (when the
// node is one of a cluster) in front of the engine's local evaluator, which
// sends its own sub-problems back through the top.
//
// The layers know nothing about schemas or storage: they key, share and
// store Answers, and only those Answer.Shareable allows (the rule for
// cycles and reuse is stated once, on Frame). The per-request scope type
// S is opaque to them and passed through unchanged to the innermost
// resolver, and so is Problem.Depth.
//
// # Dispatch across nodes
//
// Several servers sharing one datastore form a cluster (Cluster, Ring):
// each sub-problem Key has one owner node, chosen by rendezvous hashing of
// (revision, resource type, resource ID, relation, subject), and Remote
// sends a problem's share to its owner, which answers it through its own
// Cache and Singleflight. So each answer is computed and cached once in
// the cluster rather than once per node.
//
// What is dispatched (Dispatchable) follows from Frame's "Reuse" rule: a
// peer evaluates the problem in an evaluation of its own, so it can only
// answer the question as anyone asking it would, never "the question
// under this request's assumptions". That is exactly what a Shareable
// answer is, so a peer's answer may stand wherever a Cache hit may:
//
//   - A problem carrying a caveat context (ContextHash != 0) stays local:
//     its answer depends on the request's context, which is not sent.
//   - A problem in progress in the request's own frames never reaches a
//     resolver layer (the evaluator answers it with its assumed value,
//     see Frame, "Assume"); any other problem's answer, computed from
//     scratch by the owner, is exact (its Low is NoLow), like a cached one.
//   - Explain mode (access paths) bypasses the layers altogether.
//   - A relation's problem (as opposed to a permission's) is Local: the
//     evaluation of the permission that asks for it has usually read the
//     object's relationships already, so it costs no query here, and on
//     its owner it would cost a query and a round trip.
//   - A problem a node received from a peer is Local, and so are the
//     sub-problems of its evaluation: a receiver never dispatches again,
//     so one request costs at most one hop and dispatch cannot loop.
//
// Deadlock freedom across nodes: a received problem keeps the sender's
// Seq, so a Singleflight wait on the owner still only waits for an older
// evaluation; a dispatch never leads to a further dispatch, so every
// cycle of waits would have to pass a Singleflight wait, and Seq strictly
// decreases along those. A peer that is backed off, fails, or has not
// answered within the hedge delay has its share evaluated locally.
//
// Why here and not in graph/: graph is the relationship model every package
// imports; resolver layers depend on storage revisions and on the engine's
// request scope, so they live under the engine that owns them.
package dispatch
