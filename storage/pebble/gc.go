package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// gcChunk bounds the deletions in one GC batch.
const gcChunk = 10_000

// CollectGarbage drops history that no revision inside the GC window
// needs. The horizon H is the newest revision committed at or before
// now-window; revisions below H become unreadable (ErrRevisionTooOld).
// For every relationship changed in revisions [floor, H], the versions
// older than its newest version at or before H are deleted, and that
// version too when it is a tombstone; revision records and change logs
// below H go, as do schema versions shadowed at H. The change log makes a
// pass proportional to the writes since the last one, not to the store.
func (e *Engine) CollectGarbage(ctx context.Context, now time.Time) error {
	if err := e.collectGarbage(ctx, now); err != nil {
		return fmt.Errorf("collect garbage: %w", err)
	}
	return nil
}

func (e *Engine) collectGarbage(ctx context.Context, now time.Time) error {
	e.gcMu.Lock()
	defer e.gcMu.Unlock()
	release, err := e.use()
	if err != nil {
		return err
	}
	defer release()
	floor := storage.Revision(e.floor.Load())
	horizon, err := e.horizon(ctx, floor, now.Add(-e.opts.GCWindow))
	if err != nil || horizon <= floor {
		return err
	}
	// Raise the floor before deleting: readers check it after opening
	// their iterator, so none reads below it from here on.
	e.floor.Store(uint64(horizon))

	b := e.db.NewBatch()
	defer func() { b.Close() }()
	flushIfFull := func() error {
		if b.Count() < gcChunk {
			return nil
		}
		if err := b.Commit(pdb.NoSync); err != nil {
			return err
		}
		b.Close()
		b = e.db.NewBatch()
		return ctx.Err()
	}

	versions, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{
		LowerBound: []byte{spaceForward}, UpperBound: []byte{spaceForward + 1}})
	if err != nil {
		return err
	}
	defer versions.Close()
	done := map[string]struct{}{}
	var rv []byte
	collect := func(fwd []byte) error {
		if _, ok := done[string(fwd)]; ok {
			return nil
		}
		done[string(fwd)] = struct{}{}
		var comps [6][]byte
		if err := splitBody(fwd, &comps); err != nil {
			return err
		}
		rv = reverseBody(rv[:0], &comps)
		if err := dropShadowed(versions, b, fwd, rv, horizon); err != nil {
			return err
		}
		return flushIfFull()
	}
	if err := e.changedSince(ctx, floor, horizon, collect); err != nil {
		return err
	}
	if err := dropExpired(ctx, e.db, versions, b, now.Add(-e.opts.GCWindow), horizon, flushIfFull); err != nil {
		return err
	}
	if err := e.dropSchemas(b, horizon); err != nil {
		return err
	}
	_ = b.DeleteRange(revisionKey(spaceRevision, 0), revisionKey(spaceRevision, horizon), nil)
	_ = b.DeleteRange(revisionKey(spaceChanges, 0), revisionKey(spaceChanges, horizon), nil)
	_ = b.Set(keyGCFloor, binary.BigEndian.AppendUint64(nil, uint64(horizon)), nil)
	// The floor is persisted last: if the process dies mid-pass, the next
	// pass starts from the old floor and redoes the work.
	return b.Commit(e.writeOpt)
}

// changedSince calls fn with the forward-index body of every
// relationship changed in revisions [floor, horizon] (some more than
// once): from their change logs, and from the audit entries of the
// revisions those record alone (see recordedByAudit).
func (e *Engine) changedSince(ctx context.Context, floor, horizon storage.Revision, fn func(fwd []byte) error) error {
	logs, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{
		LowerBound: revisionKey(spaceChanges, floor), UpperBound: revisionKey(spaceChanges, horizon+1)})
	if err != nil {
		return err
	}
	defer logs.Close()
	for valid := logs.First(); valid; valid = logs.Next() {
		err := decodeChanges(logs.Value(), func(_ storage.Op, fwd, _ []byte) error { return fn(fwd) })
		if err != nil {
			return err
		}
	}
	if err := logs.Error(); err != nil {
		return err
	}
	entries, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{
		LowerBound: auditEntryKey(floor), UpperBound: auditEntryKey(horizon + 1)})
	if err != nil {
		return err
	}
	defer entries.Close()
	var fwd []byte
	for valid := entries.First(); valid; valid = entries.Next() {
		en, err := auditlog.Decode(entries.Value())
		if err != nil {
			return fmt.Errorf("audit entry %d: %w", beUint64(entries.Key()[2:]), err)
		}
		for i := range en.Changes {
			fwd = forward.appendBody(fwd[:0], &en.Changes[i].Relationship)
			if err := fn(fwd); err != nil {
				return err
			}
		}
	}
	return entries.Error()
}

// horizon returns the newest revision in [floor, head] committed at or
// before cutoff, or floor if there is none. Commit times never decrease
// with revision, so that is the newer of the newest such revision record
// and the newest such audit entry.
func (e *Engine) horizon(ctx context.Context, floor storage.Revision, cutoff time.Time) (storage.Revision, error) {
	head := storage.Revision(e.head.Load()) // applied revisions above it are not durable yet
	newest := func(lower, upper []byte, commitTime func(v []byte) (time.Time, error)) (storage.Revision, error) {
		it, err := e.db.NewIterWithContext(ctx, &pdb.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return 0, err
		}
		defer it.Close()
		h := floor
		for valid := it.First(); valid; valid = it.Next() {
			k := it.Key()
			rev := storage.Revision(beUint64(k[len(k)-8:]))
			at, err := commitTime(it.Value())
			if err != nil {
				return 0, fmt.Errorf("revision %d: %w", rev, err)
			}
			if at.After(cutoff) {
				break
			}
			h = rev
		}
		return h, it.Error()
	}
	fromRecords, err := newest(revisionKey(spaceRevision, floor), revisionKey(spaceRevision, head+1), func(v []byte) (time.Time, error) {
		rr, err := decodeRevisionRecord(v)
		return rr.committedAt, err
	})
	if err != nil {
		return 0, err
	}
	fromAudit, err := newest(auditEntryKey(floor), auditEntryKey(head+1), auditlog.CommittedAt)
	if err != nil {
		return 0, fmt.Errorf("audit log: %w", err)
	}
	return max(fromRecords, fromAudit), nil
}

// dropShadowed deletes the versions of one relationship that no reader at
// or above horizon can see, from both indexes.
func dropShadowed(it *pdb.Iterator, b *pdb.Batch, fwd, rv []byte, horizon storage.Revision) error {
	var key []byte
	kept := false
	for valid := it.SeekGE(appendDescRevision(append(key[:0], fwd...), horizon)); valid; valid = it.Next() {
		k := it.Key()
		if len(k) != len(fwd)+suffixLen || !bytes.HasPrefix(k, fwd) {
			break
		}
		if !kept {
			kept = true
			if v := it.Value(); len(v) == 0 || v[0]&flagTombstone == 0 {
				continue // the version readers at the horizon see
			}
		}
		suffix := k[len(fwd):]
		_ = b.Delete(k, nil)
		key = append(append(key[:0], rv...), suffix...)
		_ = b.Delete(key, nil)
	}
	return it.Error()
}

// dropSchemas deletes schema versions shadowed at horizon.
func (e *Engine) dropSchemas(b *pdb.Batch, horizon storage.Revision) error {
	it, err := e.db.NewIter(&pdb.IterOptions{LowerBound: schemaKey(horizon), UpperBound: []byte{spaceSchema + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.First() {
		for it.Next() {
			_ = b.Delete(it.Key(), nil)
		}
	}
	return it.Error()
}

// dropExpired removes relationships that expired before cutoff (the start
// of the window): when the expiring version is still the newest one and
// was committed at or before the horizon, every version of the
// relationship goes, from both indexes. An expiration-index entry whose
// version was since replaced is dropped alone; the replacement's own GC
// handles the rest. Readers are unaffected: at any readable revision the
// relationship is expired, hence invisible, either way.
func dropExpired(ctx context.Context, db *pdb.DB, versions *pdb.Iterator, b *pdb.Batch, cutoff time.Time,
	horizon storage.Revision, flushIfFull func() error) error {
	it, err := db.NewIterWithContext(ctx, &pdb.IterOptions{
		LowerBound: []byte{spaceExpiry}, UpperBound: expirationPrefix(cutoff)})
	if err != nil {
		return err
	}
	defer it.Close()
	var fwd, rv, key []byte
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) < 1+12+1+suffixLen {
			return fmt.Errorf("expiration key %q: %w", k, errCorrupt)
		}
		fwd = append(fwd[:0], k[13:len(k)-suffixLen]...)
		rev := descRevision(k[len(k)-suffixLen:])
		if rev > horizon {
			continue // a later pass, once the write is inside the horizon
		}
		// The newest version of the relationship, if it is this one.
		if versions.SeekGE(fwd) {
			vk := versions.Key()
			if len(vk) == len(fwd)+suffixLen && bytes.HasPrefix(vk, fwd) && descRevision(vk[len(fwd):]) == rev {
				var comps [6][]byte
				if err := splitBody(fwd, &comps); err != nil {
					return err
				}
				rv = reverseBody(rv[:0], &comps)
				for ok := true; ok; ok = versions.Next() {
					vk := versions.Key()
					if len(vk) != len(fwd)+suffixLen || !bytes.HasPrefix(vk, fwd) {
						break
					}
					_ = b.Delete(vk, nil)
					key = append(append(key[:0], rv...), vk[len(fwd):]...)
					_ = b.Delete(key, nil)
				}
			}
		}
		if err := versions.Error(); err != nil {
			return err
		}
		_ = b.Delete(k, nil)
		if err := flushIfFull(); err != nil {
			return err
		}
	}
	return it.Error()
}
