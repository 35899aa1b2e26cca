// Package access answers the questions a security analyst asks about the
// whole graph over time: which relationships and accesses end soon
// (Expiring) and what a subject gained or lost between two revisions, and
// why (Diff). The per-row questions — who holds a permission on a
// resource, what a subject holds — are the check engine's
// (check.Engine.WhoCanAccess, WhatCanAccess); this package combines them
// with the datastore's history and audit log.
//
// Each query is validated here, once: a malformed one fails with a
// *core.FieldError naming the query's field in snake case (within,
// resource_type, from_time, ...), so every API that serves these
// questions reports bad input alike. Every answer is bounded; the limits
// are the exported Max constants, and an answer cut by one says so.
//
// A caller provides a Source: the datastore, the check engine and a way
// to open a snapshot at a revision with the schema in force there.
package access
