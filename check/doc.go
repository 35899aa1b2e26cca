// Package check is Pemba's query engine: it answers Check, BulkCheck,
// LookupResources and LookupSubjects (and, through package expand, Expand)
// for one compiled schema and one storage snapshot, with optional access
// paths that prove a grant and denials that explain a refusal (a second,
// bounded pass over the schema that runs only for denied explain
// requests). For access analysis it lists who can access a resource and
// what a subject can access (WhoCanAccess, WhatCanAccess), each row with
// a shortest path, how the access is held and when it ends (EndsAt).
//
// The engine decides; it does no I/O other than reads through the
// storage.Reader it is handed, reads no flags and does not log. A caller
// must:
//   - resolve consistency (zookies) to a revision and pass a Snapshot whose
//     Schema is the schema in force at that revision (the cross-request cache
//     is keyed by revision, so one Engine serves one datastore);
//   - take "now" once per request (Request.Now) — expirations and the cache
//     validity of results are judged against it;
//   - pass the request's caveat context.
//
// Sub-problems flow through the resolver layers of package check/dispatch:
// cache → singleflight → local evaluation, which dispatches its own
// sub-problems back through the top.
package check
