package access

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pembadb/pemba/audit"
	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// Bounds of one Diff call.
const (
	// MaxDiffAccesses bounds the accesses a diff reads at each of its two
	// revisions.
	MaxDiffAccesses = 10000
	// MaxDiffChanges bounds the relationship changes a diff reads between
	// its two revisions to find causes.
	MaxDiffChanges = 1000000
	// MaxCauses bounds the causes listed for one gained or lost access.
	MaxCauses = 16
)

// ErrNoAuditLog marks a diff end given as a time on a datastore whose
// audit log is disabled: only the log maps times to revisions.
var ErrNoAuditLog = errors.New("finding the revision current at a time needs the audit log, which is disabled on this server: give a zookie instead")

// DiffEnd is one end of a diff: the revision current at Time, or
// Revision when ByRevision is set. The zero DiffEnd is the head, now
// (only the later end may be left so).
type DiffEnd struct {
	Time       time.Time
	Revision   storage.Revision
	ByRevision bool
	// Field names the end in errors (from_time, to_zookie, ...).
	Field string
}

func (e DiffEnd) set() bool { return e.ByRevision || !e.Time.IsZero() }

// DiffQuery asks what Subject gained and lost between two revisions.
type DiffQuery struct {
	Subject graph.SubjectRef
	// From is the earlier end (required); To the later (the head when
	// unset).
	From, To DiffEnd
	// ResourceTypes and Permissions narrow the accesses compared, as in
	// check.WhatRequest; they are checked against the schema at To.
	ResourceTypes, Permissions []string
	Context                    map[string]any
	// Now is the present instant; zero means time.Now().
	Now time.Time
}

// Operation is what a relationship change did.
type Operation int

const (
	// Written: a write created or replaced the relationship.
	Written Operation = iota + 1
	// Deleted: a write deleted it.
	Deleted
	// Expired: its expiration passed between the two ends.
	Expired
)

// Change is one relationship change between the ends of a diff.
type Change struct {
	Op           Operation
	Relationship graph.Relationship
	// Revision wrote the change; 0 for an expiration.
	Revision storage.Revision
	// Audit is the audit event that recorded the change (for an
	// expiration, the write that set it), when the audit log has it.
	Audit *audit.Event
}

// DiffRow is one access gained (as held at To) or lost (as held at From).
type DiffRow struct {
	Lost   bool
	Access check.AccessRow
	// Causes are the changes on the access's path, or else the changes
	// touching the path's objects; at most MaxCauses.
	Causes []Change
}

// DiffAnswer is the answer of a Diff call.
type DiffAnswer struct {
	// From and To are the revisions compared.
	From, To storage.Revision
	// Rows are ordered by resource type, resource ID, then permission.
	Rows []DiffRow
}

// diffEnd is a resolved end: its revision and the instant expirations
// are judged at.
type diffEnd struct {
	rev   storage.Revision
	at    time.Time
	field string
}

// Diff compares the accesses of q.Subject at the two ends (each with the
// schema in force there, expirations judged at the end's instant) and
// lists each gained or lost access with its causes: the relationship
// changes between the ends (read from the datastore's history, like
// Watch) and the expirations that passed between them.
func Diff(ctx context.Context, src Source, q DiffQuery) (DiffAnswer, error) {
	if !q.From.set() {
		return DiffAnswer{}, core.Invalid(core.Field("from_time"), errors.New("missing: give from_time or from_zookie"))
	}
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	head, err := src.Engine.HeadRevision(ctx)
	if err != nil {
		return DiffAnswer{}, fmt.Errorf("read head revision: %w", err)
	}
	from, err := resolveEnd(ctx, src, q.From, head, now)
	if err != nil {
		return DiffAnswer{}, err
	}
	to, err := resolveEnd(ctx, src, q.To, head, now)
	if err != nil {
		return DiffAnswer{}, err
	}
	switch {
	case from.rev > to.rev:
		return DiffAnswer{}, core.Invalid(core.Field(from.field), fmt.Errorf("revision %d is after the later end's, revision %d", from.rev, to.rev))
	case from.at.After(to.at):
		return DiffAnswer{}, core.Invalid(core.Field(from.field), fmt.Errorf("%s is after the later end, %s",
			from.at.UTC().Format(time.RFC3339Nano), to.at.UTC().Format(time.RFC3339Nano)))
	}
	after, err := accessesAt(ctx, src, q, to, true)
	if err != nil {
		return DiffAnswer{}, err
	}
	before, err := accessesAt(ctx, src, q, from, false)
	if err != nil {
		return DiffAnswer{}, err
	}
	ans := DiffAnswer{From: from.rev, To: to.rev}
	for k, row := range after {
		if _, ok := before[k]; !ok {
			ans.Rows = append(ans.Rows, DiffRow{Access: row})
		}
	}
	for k, row := range before {
		if _, ok := after[k]; !ok {
			ans.Rows = append(ans.Rows, DiffRow{Lost: true, Access: row})
		}
	}
	slices.SortFunc(ans.Rows, func(a, b DiffRow) int {
		x, y := a.Access, b.Access
		return cmp.Or(strings.Compare(x.Resource.Type, y.Resource.Type), strings.Compare(x.Resource.ID, y.Resource.ID),
			strings.Compare(x.Permission, y.Permission))
	})
	if err := attachCauses(ctx, src, ans.Rows, from, to); err != nil {
		return DiffAnswer{}, err
	}
	return ans, nil
}

// resolveEnd finds the revision and instant of one end. The revision
// must be committed and within the garbage-collection window; errors
// name the end's field.
func resolveEnd(ctx context.Context, src Source, e DiffEnd, head storage.Revision, now time.Time) (diffEnd, error) {
	field := core.Field(e.Field)
	switch {
	case !e.set():
		return diffEnd{rev: head, at: now, field: "to_time"}, nil
	case !e.ByRevision:
		if e.Time.After(now) {
			return diffEnd{}, core.Invalid(field, fmt.Errorf("%s is in the future", e.Time.UTC().Format(time.RFC3339)))
		}
		if !src.Audit {
			return diffEnd{}, core.Invalid(field, ErrNoAuditLog)
		}
		rev, err := src.Engine.AuditRevisionAt(ctx, e.Time)
		if err != nil {
			return diffEnd{}, fmt.Errorf("find the revision at %s: %w", e.Field, err)
		}
		return diffEnd{rev: rev, at: e.Time, field: e.Field}, nil
	}
	if e.Revision > head {
		return diffEnd{}, core.Invalid(field, fmt.Errorf("revision %d: %w", e.Revision, storage.ErrRevisionUnknown))
	}
	at, err := commitTime(ctx, src, e.Revision)
	if err != nil {
		return diffEnd{}, core.Invalid(field, err)
	}
	return diffEnd{rev: e.Revision, at: at, field: e.Field}, nil
}

// commitTime returns when rev committed: from its audit entry, or else
// from the datastore's history (Watch). Revision 0, the empty store, has
// no time.
func commitTime(ctx context.Context, src Source, rev storage.Revision) (time.Time, error) {
	if rev == 0 {
		return time.Time{}, nil
	}
	if src.Audit {
		raw, ok, err := src.Engine.AuditEntry(ctx, rev)
		if err != nil {
			return time.Time{}, fmt.Errorf("read audit entry of revision %d: %w", rev, err)
		}
		if ok {
			return auditlog.CommittedAt(raw.Value)
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for ch, err := range src.Engine.Watch(wctx, rev-1) {
		if err != nil {
			return time.Time{}, fmt.Errorf("revision %d: %w", rev, err)
		}
		return ch.CommittedAt, nil
	}
	return time.Time{}, fmt.Errorf("revision %d: %w", rev, storage.ErrRevisionUnknown)
}

// accessesAt reads the accesses of q.Subject at end e, keyed by resource
// and permission. The query's names are checked against the schema at
// the later end (strict); at the earlier end, names its schema does not
// define yet are left out (nothing can be held through them).
func accessesAt(ctx context.Context, src Source, q DiffQuery, e diffEnd, strict bool) (map[string]check.AccessRow, error) {
	snap, err := src.Snapshot(ctx, e.rev)
	switch {
	case errors.Is(err, core.ErrNoSchema):
		if strict && (len(q.ResourceTypes) > 0 || len(q.Permissions) > 0) {
			return nil, err
		}
		return nil, nil
	case err != nil:
		return nil, core.Invalid(core.Field(e.field), err)
	}
	req := check.WhatRequest{Subject: q.Subject, ResourceTypes: q.ResourceTypes, Permissions: q.Permissions, Context: q.Context, Now: e.at}
	if !strict {
		var ok bool
		if req, ok = definedAt(snap, req); !ok {
			return nil, nil
		}
	}
	out := map[string]check.AccessRow{}
	var tooMany bool
	err = src.Checker.WhatCanAccess(ctx, snap, req, func(row check.AccessRow) bool {
		if len(out) == MaxDiffAccesses {
			tooMany = true
			return false
		}
		out[row.Resource.String()+"#"+row.Permission] = row
		return true
	})
	if err != nil {
		return nil, err
	}
	if tooMany {
		return nil, fmt.Errorf("%w: %s holds more than %d accesses at revision %d, the limit of a diff: narrow it with resource_types or permissions",
			ErrTooLarge, q.Subject, MaxDiffAccesses, e.rev)
	}
	return out, nil
}

// definedAt narrows req to the names snap's schema defines; ok is false
// when nothing the request asks about is defined there.
func definedAt(snap check.Snapshot, req check.WhatRequest) (check.WhatRequest, bool) {
	sch := snap.Schema
	sdef := sch.Definition(req.Subject.Object.Type)
	if sdef == nil || req.Subject.Relation != "" && !sdef.Has(req.Subject.Relation) {
		return req, false
	}
	if len(req.ResourceTypes) > 0 {
		req.ResourceTypes = slices.DeleteFunc(slices.Clone(req.ResourceTypes), func(t string) bool { return sch.Definition(t) == nil })
		if len(req.ResourceTypes) == 0 {
			return req, false
		}
	}
	if len(req.Permissions) > 0 {
		types := req.ResourceTypes
		if len(types) == 0 {
			types = sch.DefinitionOrder
		}
		req.Permissions = slices.DeleteFunc(slices.Clone(req.Permissions), func(p string) bool {
			return !slices.ContainsFunc(types, func(t string) bool { return sch.Definition(t).Has(p) })
		})
		if len(req.Permissions) == 0 {
			return req, false
		}
	}
	return req, true
}
