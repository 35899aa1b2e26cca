// Package storage defines Pemba's revisioned relationship store: the Engine
// interface every datastore implements, the filters and mutations it takes,
// and the typed errors callers branch on. Engines live in sub-packages
// (pebble for the embedded and in-memory store, sql for PostgreSQL and
// CockroachDB); storagetest is the conformance suite every engine passes.
//
// Every read happens at a Revision through a Reader; every committed write
// creates a new, strictly greater Revision.
package storage
