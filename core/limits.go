package core

import (
	"errors"
	"fmt"
)

// Limits bound the work one request may ask for. Every API applies the
// same ones, through these methods. Zero fields take the defaults.
type Limits struct {
	// MaxWriteRelationships caps the updates of one relationship write
	// (default 1000); imports take more.
	MaxWriteRelationships int
	// MaxBulkCheckItems caps the items of one bulk check (default 1000).
	MaxBulkCheckItems int
	// LookupPageSize is a lookup page's size when the request gives none,
	// and the largest it may ask for (default 1000).
	LookupPageSize int
	// ImportBatchSize is how many imported relationships one revision
	// holds (default 1000).
	ImportBatchSize int
	// AuditPageSize is how many events one audit read returns when the
	// request gives no limit, and the most it may ask for (default 1000).
	AuditPageSize int
	// MaxImportTransaction caps the relationships of an import committed
	// in one transaction, as SpiceDB's bulk import is (default 10,000).
	MaxImportTransaction int
	// MaxImportBuffer bounds the bytes every import stream of the server
	// together holds buffered, not yet committed (default 256 MiB): a
	// relationship past it fails its import with ErrImportBufferFull.
	MaxImportBuffer int64
}

// DefaultMaxImportBuffer is MaxImportBuffer's default: room for about
// a hundred SpiceDB imports of DefaultMaxImportTransaction relationships
// at once.
const DefaultMaxImportBuffer = 256 << 20

// DefaultMaxImportTransaction is MaxImportTransaction's default: what zed's
// backup restore sends in one import by default (ten batches of 1,000).
const DefaultMaxImportTransaction = 10000

// WithDefaults returns l with every zero (or negative) field at its default.
func (l Limits) WithDefaults() Limits {
	orDefault := func(v *int) {
		if *v <= 0 {
			*v = 1000
		}
	}
	orDefault(&l.MaxWriteRelationships)
	orDefault(&l.MaxBulkCheckItems)
	orDefault(&l.LookupPageSize)
	orDefault(&l.ImportBatchSize)
	orDefault(&l.AuditPageSize)
	if l.MaxImportTransaction <= 0 {
		l.MaxImportTransaction = DefaultMaxImportTransaction
	}
	if l.MaxImportBuffer <= 0 {
		l.MaxImportBuffer = DefaultMaxImportBuffer
	}
	return l
}

// BulkCheckItems refuses a bulk check of n items unless 1 <= n <=
// MaxBulkCheckItems; field names the list of items.
func (l Limits) BulkCheckItems(n int, field Path) error {
	if n == 0 {
		return Invalid(field, errors.New("empty"))
	}
	if n > l.MaxBulkCheckItems {
		return Invalid(field, fmt.Errorf("%d items exceed the limit of %d per request", n, l.MaxBulkCheckItems))
	}
	return nil
}

// LookupLimit is the page size of a lookup that asked for requested
// results (0 or less: the default); more than LookupPageSize is capped.
func (l Limits) LookupLimit(requested int) int { return pageSize(requested, l.LookupPageSize) }

// AuditLimit is the page size of an audit read that asked for requested
// events (0 or less: the default); more than AuditPageSize is capped.
func (l Limits) AuditLimit(requested int) int { return pageSize(requested, l.AuditPageSize) }

func pageSize(requested, limit int) int {
	if requested <= 0 || requested > limit {
		return limit
	}
	return requested
}
