package server

import (
	"context"
	"sync"
	"time"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/storage"
)

// Bounds of the received dispatches' snapshot cache.
const (
	// snapshotReuse is how long a received dispatch's snapshot is reused.
	snapshotReuse = time.Second
	// maxCachedSnapshots bounds the revisions held at once.
	maxCachedSnapshots = 16
)

// snapshots reuses the snapshots received dispatches read at. Opening
// one costs the SQL engine a query (the revision's bounds), and a peer's
// dispatches come in bursts at one revision. A revision found readable
// stays readable for far longer than snapshotReuse: it never rises above
// the head, and the garbage-collection window is hours.
type snapshots struct {
	mu sync.Mutex // guards m
	m  map[storage.Revision]cachedSnapshot
}

// cachedSnapshot is a validated snapshot and when it was opened.
type cachedSnapshot struct {
	snap   check.Snapshot
	opened time.Time
}

// at returns the snapshot at rev, opened by open when none is cached.
func (c *snapshots) at(ctx context.Context, rev storage.Revision, open func(context.Context, storage.Revision) (check.Snapshot, error)) (check.Snapshot, error) {
	now := time.Now()
	c.mu.Lock()
	cs, ok := c.m[rev]
	c.mu.Unlock()
	if ok && now.Sub(cs.opened) < snapshotReuse {
		return cs.snap, nil
	}
	snap, err := open(ctx, rev) // outside the lock: it queries the datastore
	if err != nil {
		return check.Snapshot{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[storage.Revision]cachedSnapshot)
	}
	for r, old := range c.m {
		if now.Sub(old.opened) >= snapshotReuse {
			delete(c.m, r)
		}
	}
	if len(c.m) < maxCachedSnapshots {
		c.m[rev] = cachedSnapshot{snap: snap, opened: now}
	}
	return snap, nil
}
