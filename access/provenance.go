package access

import (
	"context"
	"fmt"

	"github.com/pembadb/pemba/audit"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// auditCache finds the audit events of the causes of a diff, each once.
type auditCache struct {
	src    Source
	events map[auditKey]*audit.Event
}

// auditKey names a change: its relationship and revision (0 for an
// expiration).
type auditKey struct {
	key graph.Key
	rev storage.Revision
}

func newAuditCache(src Source) *auditCache {
	return &auditCache{src: src, events: map[auditKey]*audit.Event{}}
}

// lookup returns the audit event that recorded c: the event of c's
// revision for a write or delete; for an expiration, the write that set
// it, live at revision from, as an expired event. It returns nil when
// the audit log is off or holds no such event.
func (a *auditCache) lookup(ctx context.Context, c Change, from storage.Revision) (*audit.Event, error) {
	if !a.src.Audit {
		return nil, nil
	}
	k := auditKey{c.Relationship.Key(), c.Revision}
	if ev, ok := a.events[k]; ok {
		return ev, nil
	}
	ev, err := a.find(ctx, c, from)
	if err != nil {
		return nil, fmt.Errorf("audit event of %s: %w", c.Relationship.Key(), err)
	}
	a.events[k] = ev
	return ev, nil
}

func (a *auditCache) find(ctx context.Context, c Change, from storage.Revision) (*audit.Event, error) {
	r := c.Relationship
	if c.Op == Expired {
		ev, ok, err := audit.Provenance(ctx, a.src.Engine, r, from)
		if err != nil || !ok {
			return nil, err
		}
		ev.Kind, ev.Time, ev.Cursor = audit.Expired, r.Expiration.UTC(), ""
		return &ev, nil
	}
	rel := r.Subject.Relation
	if rel == "" {
		rel = graph.Ellipsis
	}
	q := audit.Query{ResourceType: r.Resource.Type, ResourceID: r.Resource.ID, Relation: r.Relation,
		SubjectType: r.Subject.Object.Type, SubjectID: r.Subject.Object.ID, SubjectRelation: rel,
		MinRevision: c.Revision, MaxRevision: c.Revision, NoExpirations: true}
	for ev, err := range audit.Read(ctx, a.src.Engine, q) {
		if err != nil {
			return nil, err
		}
		if ev.Relationship.Key() == r.Key() {
			ev.Cursor = ""
			return &ev, nil
		}
	}
	return nil, nil
}
