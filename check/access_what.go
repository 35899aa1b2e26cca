package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// WhatCanAccess streams every resource and permission req.Subject holds,
// until yield returns false: one row per (resource, permission), ordered
// by resource type, then permission name, then resource ID (bytewise).
//
// Each (type, permission) is answered by one walk up from the subject
// (whatWalk) when the permission is monotone or subtracts only in its
// own expression, as WhoCanAccess does; any other, and one whose walk
// would hold more than the engine's bounds (accessBounds), from
// LookupResources with a check per row, a page at a time as the lookup
// streams resource IDs in order where it can (see whatLookup): then a
// call resumed with After resumes the lookup at the cursor's resource,
// and what the step holds is a page.
func (e *Engine) WhatCanAccess(ctx context.Context, snap Snapshot, req WhatRequest, yield func(AccessRow) bool) error {
	plan, err := planWhat(snap.Schema, req)
	if err != nil {
		return fmt.Errorf("what can access: %w", err)
	}
	if err := checkCursor(req.After, snap.Reader.Revision()); err != nil {
		return fmt.Errorf("what can access: %w", err)
	}
	if _, err := contextHash(req.Context); err != nil {
		return fmt.Errorf("what can access: %w", err)
	}
	now := requestNow(req.Now)
	checked := e.accessSnapshot(snap)
	for _, step := range plan {
		if a := req.After; a != nil && cmp.Or(cmp.Compare(step.typ, a.Resource.Type), cmp.Compare(step.perm, a.Permission)) < 0 {
			continue
		}
		more, err := e.whatStep(ctx, snap, checked, req, now, step, yield)
		if err != nil {
			return fmt.Errorf("what can access %s#%s@%s: %w", step.typ, step.perm, req.Subject, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// whatPlanStep is one (resource type, permission) of a WhatCanAccess.
type whatPlanStep struct{ typ, perm string }

// planWhat validates req and lists its steps in answer order: the
// (type, permission) pairs the subject's node can reach in the schema.
func planWhat(s *schema.Schema, req WhatRequest) ([]whatPlanStep, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no schema", ErrInvalidRequest)
	}
	if err := validateSubject(s, req.Subject); err != nil {
		return nil, err
	}
	types := sortedUnique(req.ResourceTypes)
	if err := checkTypes(s, types, "resource_types"); err != nil {
		return nil, err
	}
	if len(types) == 0 {
		types = sortedUnique(s.DefinitionOrder)
	}
	perms := sortedUnique(req.Permissions)
	for _, p := range perms {
		if !slices.ContainsFunc(types, func(t string) bool { return s.Definitions[t].Has(p) }) {
			return nil, &RequestError{Part: "permissions", Message: fmt.Sprintf("no resource type asked about has a permission or relation %q", p)}
		}
	}
	if a := req.After; a != nil && a.Subject != req.Subject {
		return nil, &RequestError{Part: "cursor", Message: fmt.Sprintf("cursor belongs to a query for %s, not %s", a.Subject, req.Subject)}
	}
	from := schema.Node{Type: req.Subject.Object.Type, Relation: req.Subject.Relation}
	var plan []whatPlanStep
	for _, t := range types {
		def := s.Definitions[t]
		names := perms
		if len(names) == 0 {
			names = defaultPermissions(def)
		}
		for _, p := range names {
			if !def.Has(p) || !s.Reachability().Lookup(schema.Node{Type: t, Relation: p}).Reaches(from) {
				continue
			}
			plan = append(plan, whatPlanStep{typ: t, perm: p})
		}
	}
	return plan, nil
}

// whatStep streams the rows of one resource type and permission; more is
// false once yield asked to stop. The walk reads snap, everything that
// checks reads checked (see accessSnapshot).
func (e *Engine) whatStep(ctx context.Context, snap, checked Snapshot, req WhatRequest, now time.Time, step whatPlanStep, yield func(AccessRow) bool) (more bool, err error) {
	ev, err := e.newEvaluation(ctx, snap, req.Subject, req.Context, now)
	if err != nil {
		return false, err
	}
	w, err := walkWhat(ev, req.Subject, schema.Node{Type: step.typ, Relation: step.perm}, min(e.cfg.MaxAccessObjects, e.bounds.walkNodes))
	e.release(ev)
	if errors.Is(err, ErrAccessTooLarge) {
		// Too many to hold at once: the lookup streams them in ID order
		// where it can.
		w, err = &whatWalk{}, nil
	}
	if err != nil {
		return false, err
	}
	if !w.exact {
		return e.whatLookup(ctx, checked, req, now, step, yield)
	}
	g := w.g
	width := g.ends()
	slices.SortFunc(w.found, func(a, b int32) int { return cmp.Compare(g.nodes[a].n.id, g.nodes[b].n.id) })
	var found []int32
	for _, i := range w.found {
		if a := req.After; a != nil && a.Resource.Type == step.typ && a.Permission == step.perm && g.nodes[i].n.id <= a.Resource.ID {
			continue
		}
		found = append(found, i)
	}
	build := func(ctx context.Context, k int) (AccessRow, bool, error) {
		i := found[k]
		q := rowRequest{snap: checked, caveatCtx: req.Context, now: now, res: graph.ObjectRef{Type: step.typ, ID: g.nodes[i].n.id}, perm: step.perm,
			subject: req.Subject, eval: req.Subject}
		path := func(clean bool, missing []string) *Path { return g.pathUp(i, clean, req.Subject, missing) }
		return e.graphRow(ctx, q, path, g.nodes[i].clean, w.monotone, width[i])
	}
	return e.streamGraphRows(ctx, len(found), build, !w.monotone, yield)
}

// whatLookup streams the rows of one resource type and permission from
// LookupResources, with a check per row. Where the lookup answers in
// resource ID order (see lookupOrdered), its results are answered a page
// (whatPage) at a time as they come, and a call resumed by a cursor
// resumes the lookup after the cursor's resource: what the step holds is
// a page. Otherwise the lookup's results are collected (at most
// MaxAccessObjects), sorted and answered.
func (e *Engine) whatLookup(ctx context.Context, snap Snapshot, req WhatRequest, now time.Time, step whatPlanStep, yield func(AccessRow) bool) (more bool, err error) {
	lookup := LookupResourcesRequest{ResourceType: step.typ, Permission: step.perm, Subject: req.Subject, Context: req.Context, Now: now}
	target := schema.Node{Type: step.typ, Relation: step.perm}
	if a := req.After; a != nil && a.Resource.Type == step.typ && a.Permission == step.perm &&
		orderedTransfer(snap.Schema.Reachability().Lookup(target), target) != nil {
		lookup.Cursor = orderedCursor(snap.Reader.Revision(), a.Resource.ID)
	}
	var ids []string
	inOrder := false
	more = true
	var rowsErr error
	flush := func() bool {
		more, rowsErr = e.whatRows(ctx, snap, req, now, step, ids, yield)
		ids = ids[:0]
		return more && rowsErr == nil
	}
	err = e.LookupResources(ctx, snap, lookup, func(r ResourceResult) bool {
		ids = append(ids, r.ID)
		if strings.HasPrefix(r.Cursor, orderedPrefix) {
			inOrder = true
			return len(ids) < whatPage || flush()
		}
		return len(ids) <= e.cfg.MaxAccessObjects
	})
	if err != nil || rowsErr != nil || !more {
		return false, cmp.Or(err, rowsErr)
	}
	if inOrder {
		if len(ids) > 0 && !flush() {
			return false, rowsErr
		}
		return true, nil
	}
	if len(ids) > e.cfg.MaxAccessObjects {
		return false, fmt.Errorf("%w: more than %d resources (MaxAccessObjects)", ErrAccessTooLarge, e.cfg.MaxAccessObjects)
	}
	slices.Sort(ids)
	if a := req.After; a != nil && a.Resource.Type == step.typ && a.Permission == step.perm {
		ids = slices.DeleteFunc(ids, func(id string) bool { return id <= a.Resource.ID })
	}
	return e.whatRows(ctx, snap, req, now, step, ids, yield)
}

// whatPage is how many resources whatRows answers with one batched check.
const whatPage = 256

// whatRows streams the rows of the resources ids (sorted) of one step. It
// answers them whatPage at a time with one batched check of the subject,
// whose evaluation works out once what the resources have in common (a
// project, its teams and orgs, a tier) instead of once per row, then
// builds each granted row (its path and end) as accessRow does. The
// first page is one resource, so the first row comes early.
func (e *Engine) whatRows(ctx context.Context, snap Snapshot, req WhatRequest, now time.Time, step whatPlanStep, ids []string, yield func(AccessRow) bool) (more bool, err error) {
	page := 1
	for start := 0; start < len(ids); {
		end := min(start+page, len(ids))
		ev, err := e.newEvaluation(ctx, snap, req.Subject, req.Context, now)
		if err != nil {
			return false, err
		}
		outs, err := ev.checkBatch(step.typ, step.perm, ids[start:end], 1)
		outs = slices.Clone(outs) // the evaluation's slab is reused once released
		e.release(ev)
		if err != nil {
			return false, fmt.Errorf("check %s#%s@%s: %w", step.typ, step.perm, req.Subject, err)
		}
		build := func(ctx context.Context, k int) (AccessRow, bool, error) {
			q := rowRequest{snap: snap, caveatCtx: req.Context, now: now, res: graph.ObjectRef{Type: step.typ, ID: ids[start+k]}, perm: step.perm,
				subject: req.Subject, eval: req.Subject}
			return e.accessRowFrom(ctx, q, outs[k])
		}
		if more, err := e.streamBuilt(ctx, end-start, build, yield); err != nil || !more {
			return false, err
		}
		start, page = end, whatPage
	}
	return true, nil
}
