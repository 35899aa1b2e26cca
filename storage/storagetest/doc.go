// Package storagetest is the conformance suite every storage engine passes:
// snapshot isolation, revisions, preconditions, mutations, queries and
// their ordering and cursors, expiration, caveats, garbage collection,
// Watch, schema versions, import and export, and input validation.
//
// An engine's tests call
//
//	storagetest.Run(t, func(t *testing.T) storage.Engine { ... })
//
// The factory must return a fresh, empty engine (head revision 0, no
// relationships, no schema) for every subtest and arrange its own cleanup
// (t.Cleanup to close it). The engine's GC window must be at least a minute
// and below ten years: the suite collects garbage "ten years from now" to
// make every older revision too old. Subtests do not run in parallel.
package storagetest
