package check

import "github.com/pembadb/pemba/storage/readcache"

// accessReadBytes bounds the read cache one WhoCanAccess or WhatCanAccess
// keeps when the engine has none (see accessSnapshot).
const accessReadBytes = 16 << 20

// accessSnapshot returns snap for one access request: when the engine
// keeps no read cache, its reads go through a cache of their own, at most
// accessReadBytes, dropped with the request. The rows of one request read
// the same relationships over and over (a resource's project, its tier,
// the teams and orgs between them, each row's checks and their steps
// through time), so without it every row would read them from storage
// again. An engine with a read cache shares that one instead. The access
// walks read each object once, so they read snap itself.
func (e *Engine) accessSnapshot(snap Snapshot) Snapshot {
	if e.reads != nil || snap.Reader == nil {
		return snap
	}
	c := readcache.New(readcache.Config{MaxBytes: accessReadBytes})
	snap.Reader = c.Reader(snap.Reader)
	return snap
}
