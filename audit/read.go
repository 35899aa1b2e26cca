package audit

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// Read streams the events q selects in time order, oldest first (newest
// first when q.NewestFirst). Written events come from the entries the
// most selective index term names; expirations are derived from the
// entries that set them (see expired.go). A malformed query fails with a
// *core.FieldError naming the Query field in snake case (resource_id,
// since, ...).
func Read(ctx context.Context, log storage.AuditLog, q Query) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		p, err := plan(ctx, log, q)
		if err != nil {
			yield(Event{}, err)
			return
		}
		n := 0
		for ev, err := range p.merged(ctx, log) {
			if err != nil {
				yield(Event{}, err)
				return
			}
			ev.Cursor = encodeCursor(ev.position())
			if !yield(ev, nil) {
				return
			}
			if n++; q.Limit > 0 && n == q.Limit {
				return
			}
		}
	}
}

// query is a validated Query with its bounds resolved.
type query struct {
	Query
	desc bool
	// lo and hi bound the revisions of written events ([lo, hi]; hi 0 is
	// open); empty is set when no written event can match.
	lo, hi storage.Revision
	empty  bool
	// from and to bound the times of expirations [from, to).
	from, to time.Time
	after    *position
	kinds    map[EventKind]bool
	// term is the index term that narrows the entries read, or "".
	term string
}

func plan(ctx context.Context, log storage.AuditLog, q Query) (*query, error) {
	if err := validate(q); err != nil {
		return nil, err
	}
	p := &query{Query: q, desc: q.NewestFirst, lo: q.MinRevision, hi: q.MaxRevision}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	if q.After != "" {
		pos, err := decodeCursor(q.After)
		if err != nil {
			return nil, core.Invalid(core.Field("cursor"), err)
		}
		p.after = &pos
	}
	if len(q.Kinds) > 0 {
		p.kinds = map[EventKind]bool{}
		for _, k := range q.Kinds {
			p.kinds[k] = true
		}
	}
	if err := p.resolveTimes(ctx, log); err != nil {
		return nil, err
	}
	if err := p.resolveCursor(ctx, log); err != nil {
		return nil, err
	}
	p.term = p.pickTerm()
	return p, nil
}

// resolveTimes turns the time bounds into revision bounds for written
// events and the revision bounds into time bounds for expirations.
func (p *query) resolveTimes(ctx context.Context, log storage.AuditLog) error {
	if !p.Since.IsZero() {
		before, err := log.AuditRevisionAt(ctx, p.Since.Add(-time.Nanosecond))
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		p.lo = max(p.lo, before+1)
	}
	if !p.Until.IsZero() {
		last, err := log.AuditRevisionAt(ctx, p.Until.Add(-time.Nanosecond))
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		if last == 0 {
			p.empty = true
		} else if p.hi == 0 || last < p.hi {
			p.hi = last
		}
	}
	if p.hi != 0 && p.lo > p.hi {
		p.empty = true
	}
	p.from, p.to = p.Since, p.Now
	if !p.Until.IsZero() && p.Until.Before(p.to) {
		p.to = p.Until
	}
	// An expiration belongs to revision r when it passed after r's
	// commit and no later than r+1's.
	if p.MinRevision > 0 {
		if t, ok, err := commitTime(ctx, log, p.MinRevision); err != nil {
			return err
		} else if ok && t.After(p.from) {
			p.from = t
		}
	}
	if p.MaxRevision > 0 {
		if t, ok, err := commitTime(ctx, log, p.MaxRevision+1); err != nil {
			return err
		} else if ok && t.Before(p.to) {
			p.to = t
		}
	}
	return nil
}

// resolveCursor narrows the revisions of written events to those the
// cursor has not passed: a written event's own revision, or the revision
// in force when a derived expiration happened.
func (p *query) resolveCursor(ctx context.Context, log storage.AuditLog) error {
	if p.after == nil {
		return nil
	}
	rev := p.after.rev
	if p.after.expired {
		var err error
		if rev, err = log.AuditRevisionAt(ctx, time.Unix(0, p.after.time)); err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
	}
	if p.desc {
		if p.hi == 0 || rev < p.hi {
			p.hi = rev
		}
		if rev == 0 || p.lo > p.hi {
			p.empty = true
		}
	} else {
		p.lo = max(p.lo, rev)
		if p.hi != 0 && p.lo > p.hi {
			p.empty = true
		}
	}
	return nil
}

func commitTime(ctx context.Context, log storage.AuditLog, rev storage.Revision) (time.Time, bool, error) {
	raw, ok, err := log.AuditEntry(ctx, rev)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	t, err := auditlog.CommittedAt(raw.Value)
	return t, err == nil, err
}

// pickTerm chooses the index term that names the fewest entries, by rule
// of thumb: one object before one actor or label before a whole type.
func (p *query) pickTerm() string {
	switch {
	case p.ResourceID != "":
		return auditlog.ResourceTerm(p.ResourceType, p.ResourceID)
	case p.SubjectID != "":
		return auditlog.SubjectTerm(p.SubjectType, p.SubjectID)
	case len(p.Labels) > 0:
		return auditlog.LabelTerm(p.Labels[0].Key, p.Labels[0].Value)
	case p.Actor != "":
		return auditlog.ActorTerm(p.Actor)
	case p.ResourceType != "":
		return auditlog.ResourceTypeTerm(p.ResourceType)
	case p.SubjectType != "":
		return auditlog.SubjectTypeTerm(p.SubjectType)
	case len(p.kinds) == 1 && p.kinds[SchemaChanged]:
		return auditlog.KindTerm(storage.AuditSchema)
	}
	return ""
}

// validate checks q, naming the offending field: how the filters fit
// together, and the names and IDs with the rules of relationships, so a
// typo is refused instead of matching nothing. The schema is not
// consulted: the log holds changes to types and relations a later schema
// may have removed.
func validate(q Query) error {
	bad := func(field, format string, args ...any) error {
		return core.Invalid(core.Field(field), fmt.Errorf(format, args...))
	}
	switch {
	case q.ResourceID != "" && q.ResourceType == "":
		return bad("resource_id", "requires resource_type")
	case q.SubjectID != "" && q.SubjectType == "":
		return bad("subject_id", "requires subject_type")
	case q.SubjectRelation != "" && q.SubjectType == "":
		return bad("subject_relation", "requires subject_type")
	case !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until):
		return bad("until", "%s is not after since (%s)", q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	case q.MaxRevision != 0 && q.MinRevision > q.MaxRevision:
		return bad("to", "revision %d is before the first revision asked for (%d)", q.MaxRevision, q.MinRevision)
	case q.Limit < 0:
		return bad("limit", "%d is negative", q.Limit)
	}
	if err := validateNames(q); err != nil {
		return err
	}
	if err := core.ValidateLabels(q.Labels, core.Field("labels")); err != nil {
		return err
	}
	for i, k := range q.Kinds {
		if k < Created || k > SchemaChanged {
			return core.Invalid(core.Field(fmt.Sprintf("kinds[%d]", i)), fmt.Errorf("unknown event kind %d", int(k)))
		}
	}
	return nil
}

// validateNames checks the names and IDs q filters on.
func validateNames(q Query) error {
	for _, c := range []struct {
		field, value string
		validate     func(string) error
	}{
		{"resource_type", q.ResourceType, graph.ValidateTypeName},
		{"resource_id", q.ResourceID, func(v string) error { return graph.ValidateObjectID(v, false) }},
		{"relation", q.Relation, graph.ValidateRelationName},
		{"subject_type", q.SubjectType, graph.ValidateTypeName},
		{"subject_id", q.SubjectID, func(v string) error { return graph.ValidateObjectID(v, true) }},
		{"subject_relation", q.SubjectRelation, func(v string) error {
			if v == graph.Ellipsis {
				return nil
			}
			return graph.ValidateRelationName(v)
		}},
	} {
		if c.value == "" {
			continue
		}
		if err := c.validate(c.value); err != nil {
			return core.Invalid(core.Field(c.field), err)
		}
	}
	return nil
}

// wants reports whether events of kind k are asked for.
func (p *query) wants(k EventKind) bool { return p.kinds == nil || p.kinds[k] }

// matchesEntry checks the entry-level filters: actor and labels.
func (p *query) matchesEntry(e *storage.AuditEntry) bool {
	if p.Actor != "" && e.Metadata.Actor != p.Actor {
		return false
	}
	for _, want := range p.Labels {
		if !slices.Contains(e.Metadata.Labels, want) {
			return false
		}
	}
	return true
}

// matchesRelationship checks the relationship filters.
func (p *query) matchesRelationship(r *graph.Relationship) bool {
	subjRel := p.SubjectRelation
	if subjRel == graph.Ellipsis {
		subjRel = ""
	}
	return (p.ResourceType == "" || r.Resource.Type == p.ResourceType) &&
		(p.ResourceID == "" || r.Resource.ID == p.ResourceID) &&
		(p.Relation == "" || r.Relation == p.Relation) &&
		(p.SubjectType == "" || r.Subject.Object.Type == p.SubjectType) &&
		(p.SubjectID == "" || r.Subject.Object.ID == p.SubjectID) &&
		(p.SubjectRelation == "" || r.Subject.Relation == subjRel)
}

// matchesSchema checks a schema change against the filters: it matches
// when no relationship filter is set but a resource type naming it.
func (p *query) matchesSchema(s *storage.SchemaChange) bool {
	if p.ResourceID != "" || p.Relation != "" || p.SubjectType != "" {
		return false
	}
	if p.ResourceType == "" {
		return true
	}
	def, _, _ := strings.Cut(s.Name, "#")
	return (s.Kind == "definition" || s.Kind == "relation" || s.Kind == "permission") && def == p.ResourceType
}

// Provenance returns the event that wrote r as it was live at revision at:
// the newest create or touch of r's identity at or before at. ok is false
// when the log has none (written before the log began, or trimmed).
func Provenance(ctx context.Context, log storage.AuditLog, r graph.Relationship, at storage.Revision) (ev Event, ok bool, err error) {
	key := r.Key()
	for rev, err := range termRevisions(ctx, log, auditlog.ResourceTerm(r.Resource.Type, r.Resource.ID), 0, at, true) {
		if err != nil {
			return Event{}, false, fmt.Errorf("provenance of %s: %w", key, err)
		}
		e, found, err := readEntry(ctx, log, rev)
		if err != nil {
			return Event{}, false, fmt.Errorf("provenance of %s: %w", key, err)
		}
		if !found {
			continue
		}
		for i := len(e.Changes) - 1; i >= 0; i-- {
			c := &e.Changes[i]
			if c.Relationship.Key() != key {
				continue
			}
			if c.Op == storage.OpDelete {
				return Event{}, false, nil
			}
			ev := writtenEvent(&e, i)
			ev.Cursor = encodeCursor(ev.position())
			return ev, true, nil
		}
	}
	return Event{}, false, nil
}

// readEntry reads and decodes the entry of rev.
func readEntry(ctx context.Context, log storage.AuditLog, rev storage.Revision) (storage.AuditEntry, bool, error) {
	raw, ok, err := log.AuditEntry(ctx, rev)
	if err != nil || !ok {
		return storage.AuditEntry{}, false, err
	}
	e, err := auditlog.Decode(raw.Value)
	if err != nil {
		return storage.AuditEntry{}, false, err
	}
	return e, true, nil
}

// writtenEvent is the event of change i of e (i indexes Changes, then
// Schema after them).
func writtenEvent(e *storage.AuditEntry, i int) Event {
	ev := Event{Time: e.CommittedAt, Revision: e.Revision, EntryKind: e.Kind, Metadata: e.Metadata, Hash: e.Hash, index: i}
	if i >= len(e.Changes) {
		ev.Kind = SchemaChanged
		ev.Schema = e.Schema[i-len(e.Changes)]
		return ev
	}
	c := &e.Changes[i]
	ev.Relationship = c.Relationship
	switch c.Op {
	case storage.OpCreate:
		ev.Kind = Created
	case storage.OpDelete:
		ev.Kind = Deleted
	default:
		ev.Kind = Touched
	}
	return ev
}
