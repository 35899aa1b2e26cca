package pebble

import (
	"context"
	"errors"
	"fmt"
	"iter"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// Watch yields every revision after `after` from the change log, then
// waits for new commits, until ctx is done.
func (e *Engine) Watch(ctx context.Context, after storage.Revision) iter.Seq2[storage.Change, error] {
	return func(yield func(storage.Change, error) bool) {
		if err := e.checkReadable(after); err != nil {
			yield(storage.Change{}, fmt.Errorf("watch: %w", err))
			return
		}
		next := after + 1
		for {
			// Take the channel before reading head, so a commit between the
			// two still wakes us.
			wake := e.changed()
			// Close marks the engine closed before waking watchers, so
			// either this sees it or wake is closed.
			if _, err := e.HeadRevision(ctx); err != nil {
				yield(storage.Change{}, fmt.Errorf("watch: %w", err))
				return
			}
			head := storage.Revision(e.head.Load())
			for ; next <= head; next++ {
				ch, err := e.readChange(next)
				if err != nil {
					yield(storage.Change{}, fmt.Errorf("watch: %w", err))
					return
				}
				if !yield(ch, nil) {
					return
				}
				if ctx.Err() != nil {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
		}
	}
}

// readChange loads one revision's change: from its revision record and
// change log, or, for a revision its audit entry records alone (see
// recordedByAudit), from that entry.
func (e *Engine) readChange(rev storage.Revision) (storage.Change, error) {
	release, err := e.use()
	if err != nil {
		return storage.Change{}, err
	}
	defer release()
	rec, err := e.get(revisionKey(spaceRevision, rev))
	switch {
	case err == nil:
	case !errors.Is(err, pdb.ErrNotFound):
		return storage.Change{}, fmt.Errorf("revision %d: %w", rev, err)
	case rev < storage.Revision(e.floor.Load()):
		return storage.Change{}, fmt.Errorf("revision %d: %w", rev, storage.ErrRevisionTooOld)
	default:
		ch, err := e.changeFromAudit(rev)
		if err != nil {
			return storage.Change{}, fmt.Errorf("revision %d: %w", rev, err)
		}
		return ch, nil
	}
	rr, err := decodeRevisionRecord(rec)
	if err != nil {
		return storage.Change{}, fmt.Errorf("revision %d: %w", rev, err)
	}
	ch := storage.Change{Revision: rev, CommittedAt: rr.committedAt, Metadata: rr.meta, SchemaChanged: rr.schemaChanged}
	log, err := e.get(revisionKey(spaceChanges, rev))
	if err != nil {
		return storage.Change{}, fmt.Errorf("changes of revision %d: %w", rev, err)
	}
	err = decodeChanges(log, func(op storage.Op, body, value []byte) error {
		var comps [6][]byte
		if err := splitBody(body, &comps); err != nil {
			return err
		}
		pl, err := decodePayload(value)
		if err != nil {
			return err
		}
		r := forward.relationship(body, &comps)
		if err := pl.apply(&r); err != nil {
			return err
		}
		ch.Relationships = append(ch.Relationships, storage.RelationshipChange{Op: op, Relationship: r})
		return nil
	})
	if err != nil {
		return storage.Change{}, fmt.Errorf("changes of revision %d: %w", rev, err)
	}
	return ch, nil
}

// changeFromAudit is the change of a revision its audit entry records.
// A CREATE is reported as the TOUCH the change log would hold.
func (e *Engine) changeFromAudit(rev storage.Revision) (storage.Change, error) {
	v, err := e.get(auditEntryKey(rev))
	if err != nil {
		return storage.Change{}, fmt.Errorf("audit entry: %w", err)
	}
	en, err := auditlog.Decode(v)
	if err != nil {
		return storage.Change{}, fmt.Errorf("audit entry: %w", err)
	}
	return changeOf(&en), nil
}

// changeOf is the Watch change an audit entry records.
func changeOf(en *storage.AuditEntry) storage.Change {
	ch := storage.Change{Revision: en.Revision, CommittedAt: en.CommittedAt, Metadata: en.Metadata,
		SchemaChanged: en.Kind == storage.AuditSchema}
	if len(en.Changes) > 0 {
		ch.Relationships = make([]storage.RelationshipChange, len(en.Changes))
	}
	for i, c := range en.Changes {
		op := c.Op
		if op == storage.OpCreate {
			op = storage.OpTouch
		}
		ch.Relationships[i] = storage.RelationshipChange{Op: op, Relationship: c.Relationship}
	}
	return ch
}

// get returns a copy of the value under key.
func (e *Engine) get(key []byte) ([]byte, error) {
	v, closer, err := e.db.Get(key)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}
