package audit

import (
	"context"
	"iter"
	"slices"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// expired streams the derived expirations in [from, to): a relationship
// an entry created or touched whose expiration passed in the range before
// any later entry changed it. No write records an expiration; the entry
// that set it is its origin (Revision, Metadata).
//
// Candidates come from the query's object term when it has one (the
// object's whole history), otherwise from the expiration-day terms of the
// range; either way the events of one batch (one object, or one day) are
// sorted in memory before they stream.
func (p *query) expired(ctx context.Context, log storage.AuditLog) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		if p.NoExpirations || !p.wants(Expired) || !p.from.Before(p.to) {
			return
		}
		from, to := p.from, p.to
		if p.after != nil {
			// Positions past the cursor are at or beyond its instant.
			t := time.Unix(0, p.after.time)
			if p.desc && t.Before(to) {
				to = t.Add(time.Nanosecond)
			} else if !p.desc && t.After(from) {
				from = t
			}
		}
		if !from.Before(to) {
			return
		}
		var batches []string
		if p.term != "" && (p.ResourceID != "" || p.SubjectID != "") {
			batches = []string{p.term}
		} else {
			// Nothing expired before the oldest entry was written.
			first, ok, err := oldestCommit(ctx, log)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if !ok {
				return
			}
			if first.After(from) {
				from = first
			}
			batches = expiryDays(from, to)
		}
		if p.desc {
			slices.Reverse(batches)
		}
		for _, term := range batches {
			events, err := p.expirations(ctx, log, term, from, to)
			if err != nil {
				yield(Event{}, err)
				return
			}
			for _, ev := range events {
				if p.resumed(ev.position()) && !yield(ev, nil) {
					return
				}
			}
		}
	}
}

// oldestCommit returns the commit time of the oldest entry in the log.
func oldestCommit(ctx context.Context, log storage.AuditLog) (time.Time, bool, error) {
	for raw, err := range log.AuditEntries(ctx, 0, 0, false) {
		if err != nil {
			return time.Time{}, false, err
		}
		t, err := auditlog.CommittedAt(raw.Value)
		return t, err == nil, err
	}
	return time.Time{}, false, nil
}

// expiryDays lists the expiration-day terms of the days [from, to) touches.
func expiryDays(from, to time.Time) []string {
	var out []string
	day := from.UTC().Truncate(24 * time.Hour)
	for ; day.Before(to); day = day.Add(24 * time.Hour) {
		out = append(out, auditlog.ExpiryDayTerm(day))
	}
	return out
}

// expirations collects, in query order, the expirations in [from, to) of
// the entries indexed under term.
func (p *query) expirations(ctx context.Context, log storage.AuditLog, term string, from, to time.Time) ([]Event, error) {
	var out []Event
	for rev, err := range termRevisions(ctx, log, term, 0, 0, false) {
		if err != nil {
			return nil, err
		}
		e, ok, err := readEntry(ctx, log, rev)
		if err != nil {
			return nil, err
		}
		if !ok || !p.matchesEntry(&e) {
			continue
		}
		for i := range e.Changes {
			c := &e.Changes[i]
			exp := c.Relationship.Expiration
			if c.Op == storage.OpDelete || exp == nil || exp.Before(from) || !exp.Before(to) || !p.matchesRelationship(&c.Relationship) {
				continue
			}
			replaced, err := changedBefore(ctx, log, c.Relationship, e.Revision, *exp)
			if err != nil {
				return nil, err
			}
			if replaced {
				continue
			}
			ev := Event{Kind: Expired, Time: exp.UTC(), Revision: e.Revision, EntryKind: e.Kind,
				Metadata: e.Metadata, Hash: e.Hash, Relationship: c.Relationship, index: i}
			out = append(out, ev)
		}
	}
	slices.SortFunc(out, func(a, b Event) int {
		c := comparePositions(a.position(), b.position())
		if p.desc {
			return -c
		}
		return c
	})
	return out, nil
}

// changedBefore reports whether an entry after origin, committed no later
// than t, changed r's identity: then r was deleted or replaced before it
// could expire.
func changedBefore(ctx context.Context, log storage.AuditLog, r graph.Relationship, origin storage.Revision, t time.Time) (bool, error) {
	last, err := log.AuditRevisionAt(ctx, t)
	if err != nil || last <= origin {
		return false, err
	}
	key := r.Key()
	for rev, err := range termRevisions(ctx, log, auditlog.ResourceTerm(r.Resource.Type, r.Resource.ID), origin+1, last, false) {
		if err != nil {
			return false, err
		}
		e, ok, err := readEntry(ctx, log, rev)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		for i := range e.Changes {
			if e.Changes[i].Relationship.Key() == key {
				return true, nil
			}
		}
	}
	return false, nil
}
