package access

import (
	"context"
	"errors"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/storage"
)

// Source is what the analyses read.
type Source struct {
	// Engine is the datastore: its history (Watch) and audit log.
	Engine storage.Engine
	// Checker answers the access questions at one snapshot.
	Checker *check.Engine
	// Snapshot opens a reader at rev with the schema in force there; it
	// fails with core.ErrNoSchema before any schema was written.
	Snapshot func(ctx context.Context, rev storage.Revision) (check.Snapshot, error)
	// Audit says the datastore records writes in its audit log; without
	// it, times cannot be turned into revisions.
	Audit bool
	// MaxScan and MaxRelationships, when positive, lower
	// MaxExpiringScan and MaxExpiringRelationships (tests).
	MaxScan, MaxRelationships int
}

func (s Source) scanLimit() int {
	if s.MaxScan > 0 {
		return s.MaxScan
	}
	return MaxExpiringScan
}

func (s Source) relationshipLimit() int {
	if s.MaxRelationships > 0 {
		return s.MaxRelationships
	}
	return MaxExpiringRelationships
}

// ErrTooLarge marks an answer that would exceed one of the package's
// bounds; the error names the bound and how to narrow the question.
var ErrTooLarge = errors.New("answer too large")
