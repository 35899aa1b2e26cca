package audit

import (
	"context"
	"errors"
	"iter"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Read streams the events q selects, in time order (newest first when
// q.NewestFirst). A malformed query fails with a *core.FieldError naming
// the Query field in snake case (resource_id, since, ...).
func Read(ctx context.Context, log storage.AuditLog, q Query) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		yield(Event{}, errors.New("audit: not implemented yet"))
	}
}

// Provenance returns the event that wrote r as it was live at revision at:
// the newest create or touch of r's identity at or before at. ok is false
// when the log has none (written before the log began, or trimmed).
func Provenance(ctx context.Context, log storage.AuditLog, r graph.Relationship, at storage.Revision) (ev Event, ok bool, err error) {
	return Event{}, false, errors.New("audit: not implemented yet")
}
