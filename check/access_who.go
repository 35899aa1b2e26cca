package check

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// WhoCanAccess streams every subject that holds a permission on
// req.Resource, of every subject type, subject sets expanded down to their
// members, until yield returns false: one row per (permission, subject),
// ordered by permission name, then subject type, then subject ID
// (bytewise; a wildcard row, ID "*", comes first among its type).
//
// The subjects of one permission and subject type come from
// LookupSubjects; only the rows streamed pay for their path and end.
func (e *Engine) WhoCanAccess(ctx context.Context, snap Snapshot, req WhoRequest, yield func(AccessRow) bool) error {
	plan, err := planWho(snap.Schema, req)
	if err != nil {
		return fmt.Errorf("who can access: %w", err)
	}
	if err := checkCursor(req.After, snap.Reader.Revision()); err != nil {
		return fmt.Errorf("who can access: %w", err)
	}
	if _, err := contextHash(req.Context); err != nil {
		return fmt.Errorf("who can access: %w", err)
	}
	now := requestNow(req.Now)
	for _, step := range plan {
		if a := req.After; a != nil && cmp.Or(cmp.Compare(step.perm, a.Permission), cmp.Compare(step.typ, a.Subject.Object.Type)) < 0 {
			continue
		}
		more, err := e.whoStep(ctx, snap, req, now, step, yield)
		if err != nil {
			return fmt.Errorf("who can access %s#%s@%s: %w", req.Resource, step.perm, step.typ, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// whoPlanStep is one (permission, subject type) of a WhoCanAccess.
type whoPlanStep struct{ perm, typ string }

// planWho validates req and lists its steps in answer order.
func planWho(s *schema.Schema, req WhoRequest) ([]whoPlanStep, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no schema", ErrInvalidRequest)
	}
	def := s.Definitions[req.Resource.Type]
	if def == nil {
		return nil, &RequestError{Part: "resource.type", Message: fmt.Sprintf("type %q is not defined in the schema", req.Resource.Type)}
	}
	if err := graph.ValidateObjectID(req.Resource.ID, false); err != nil {
		return nil, &RequestError{Part: "resource.id", Message: err.Error()}
	}
	perms := defaultPermissions(def)
	if len(req.Permissions) > 0 {
		perms = sortedUnique(req.Permissions)
		for _, p := range perms {
			if !def.Has(p) {
				return nil, &RequestError{Part: "permissions", Message: fmt.Sprintf("definition %q has no permission or relation %q", def.Name, p)}
			}
		}
	}
	types := sortedUnique(req.SubjectTypes)
	if err := checkTypes(s, types, "subject_types"); err != nil {
		return nil, err
	}
	if a := req.After; a != nil && a.Resource != req.Resource {
		return nil, &RequestError{Part: "cursor", Message: fmt.Sprintf("cursor belongs to a query on %s, not %s", a.Resource, req.Resource)}
	}
	var plan []whoPlanStep
	for _, p := range perms {
		paths := s.Reachability().Toward(schema.Node{Type: req.Resource.Type, Relation: p})
		for _, n := range paths.EntryPoints() {
			if n.Relation != "" || (len(types) > 0 && !slices.Contains(types, n.Type)) {
				continue
			}
			plan = append(plan, whoPlanStep{perm: p, typ: n.Type})
		}
	}
	return plan, nil
}

// whoStep streams the rows of one permission and subject type; more is
// false once yield asked to stop.
func (e *Engine) whoStep(ctx context.Context, snap Snapshot, req WhoRequest, now time.Time, step whoPlanStep, yield func(AccessRow) bool) (more bool, err error) {
	var found []SubjectResult
	err = e.LookupSubjects(ctx, snap, LookupSubjectsRequest{Resource: req.Resource, Permission: step.perm, SubjectType: step.typ, Context: req.Context, Now: now},
		func(r SubjectResult) bool {
			found = append(found, r)
			return true
		})
	if err != nil {
		return false, err
	}
	slices.SortFunc(found, func(a, b SubjectResult) int { return cmp.Compare(a.Subject.Object.ID, b.Subject.Object.ID) })
	q := rowRequest{snap: snap, caveatCtx: req.Context, now: now, res: req.Resource, perm: step.perm}
	for _, f := range found {
		if a := req.After; a != nil && a.Permission == step.perm && a.Subject.Object.Type == step.typ && f.Subject.Object.ID <= a.Subject.Object.ID {
			continue
		}
		q.subject, q.eval = f.Subject, f.Subject
		var excluded []string
		if f.Subject.Object.ID == graph.Wildcard {
			excluded = make([]string, len(f.Excluded))
			for i, x := range f.Excluded {
				excluded[i] = x.Object.ID
			}
			q.eval.Object.ID = freshID(found, excluded)
		}
		row, ok, err := e.accessRow(ctx, q)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		row.Excluded = excluded
		if !yield(row) {
			return false, nil
		}
	}
	return true, nil
}

// freshID returns an ID none of the subjects found or excluded has: it
// stands for every subject the relationships do not name.
func freshID(found []SubjectResult, excluded []string) string {
	taken := func(id string) bool {
		return slices.Contains(excluded, id) || slices.ContainsFunc(found, func(r SubjectResult) bool { return r.Subject.Object.ID == id })
	}
	id := "unlisted"
	for i := 0; taken(id); i++ {
		id = "unlisted" + strconv.Itoa(i)
	}
	return id
}
