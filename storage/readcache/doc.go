// Package readcache keeps the results of small relationship queries in
// memory, keyed by the snapshot revision they were read at, in front of any
// storage.Reader.
//
// A check reads the same few relationships again and again: the parent
// chain of a folder tree, the groups a user belongs to, the rows of a
// popular document. At a fixed revision those results never change, except
// that relationships disappear as they expire, so a result read at instant
// At stays exact until Until, the earliest expiration among its rows; the
// cache serves it only to reads whose "now" lies in [At, Until). The key
// holds the limit, so a result cut short by its limit is as exact as a
// whole one. Results read after a cursor, or that hold more than MaxRows
// relationships, are passed through and never stored.
//
// The cache is bounded by an estimate of its memory and evicts with CLOCK,
// sparing results read since its sweep last passed them. Empty results,
// which most queries of some relations return, are kept apart in 36-byte
// slots identified by two independent hashes of their keys. Keeping a
// result never waits: it is dropped when its shard's lock is taken, and
// a read of many objects keeps its results under one lock per shard. One
// Cache is shared by every reader of an engine; wrap each snapshot's
// reader with Cache.Reader.
package readcache
