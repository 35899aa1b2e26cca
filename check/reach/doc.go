// Package reach is a Leopard-style reachability index for nested subject
// sets: for every qualifying relation (see Qualifies), such as
// `relation member: user | group#member`, it holds each plain subject's
// flattened membership — every object whose relation contains the subject
// through any depth of nesting — so "is user:u in group:g#member" is one
// lookup instead of a walk over the nested groups.
//
// It also holds the parent relations of folder trees (see Qualify and
// Parental): for a permission such as `view = viewer + parent->view`,
// with `relation parent: folder` on folder, Ancestors gives the objects
// above a batch of folders through any depth, with each one's unexpired
// parents, so the caller evaluates the permission's other branches on
// all of them at once instead of one level per step. Those relations keep
// their direct edges only, followed up at question time: parent chains
// are short, and the edges keep every chain's expiration exact. Lineages
// with a cycle or of more objects than the caller allows are declined.
//
// The index is revision-consistent: it answers a question asked at
// revision Q only when its content is the content at Q (Holders,
// Ancestors). It is
// built by a full read at a snapshot revision and kept current from the
// datastore's change stream (Follow); a schema change or a broken stream
// rebuilds it. Anything it cannot answer exactly — revisions it has not
// applied or that precede the last change to a relation, caveated
// relationships, members whose shortest chains have expired — it declines,
// and the caller walks the relationships instead.
//
// A caller must:
//   - run Follow (or Build and Apply) to fill the index;
//   - ask Holders and Ancestors with the revision it reads at and the
//     instant it judges expirations at, and walk when they decline;
//   - use the answers only for a schema in which the relation still
//     qualifies (Qualifies, Qualify; the index is built for the schema in force at its
//     snapshot and rebuilt when a change carries a new schema).
package reach
