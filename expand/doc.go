// Package expand builds the userset tree of a permission: the expression
// nodes (union, intersection, exclusion, arrow) of the schema, evaluated on
// the relationships of one snapshot down to subject leaves, with the caveat
// and expiration marks of each relationship. It answers "who can, and
// through what?" for analysts; it decides nothing (use package check).
//
// A caller passes a compiled schema, a storage.Reader at the revision to
// read, the request's "now", a depth bound and a node bound (a tree
// larger than Options.MaxNodes fails with ErrTooLarge as soon as it
// would exceed it); Expand performs reads only.
package expand
