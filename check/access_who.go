package check

import (
	"cmp"
	"context"
	"errors"
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
// Each permission is answered by one walk forward from the resource
// (whoWalk) when the permission is monotone or subtracts only in its own
// expression: the walk gives every subject found its shortest path and,
// for a monotone permission, its permissionship and end; otherwise a
// check per row decides those. Any other permission, and a wildcard row
// of a permission that subtracts, is answered from LookupSubjects. When
// its set evaluation answered, a subject it holds unconditionally needs
// no check: the evaluation timed each subject (see subjectSet.until), so
// the row's path is rebuilt from the proofs it kept (see proof) and its
// end is the subject's until where the set only shrinks over time, else
// found by checks from that until on (see setAnswer, endsAfter). Any
// other row (caveated, a wildcard, a lookup set evaluation left to
// checks) is decided by a check. Rows that need a check are answered
// Concurrency at a time, in order.
//
// Rows come sorted, so a permission's rows stream once its walk (or
// lookup) is done. A permission whose walk or lookup would hold more
// than the engine's bounds (accessBounds) is answered a window of
// subjects at a time instead (see whoWindows), so what a call holds is
// bounded by a window, not by the audience. A call resumed with After
// repeats the walk (or the lookup, up to its bound) and skips the rows up
// to the cursor; in windows it starts at the cursor's.
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
	checked := e.accessSnapshot(snap)
	for i := 0; i < len(plan); {
		// The steps of one permission share a walk.
		j := i + 1
		for j < len(plan) && plan[j].perm == plan[i].perm {
			j++
		}
		steps := plan[i:j]
		i = j
		if a := req.After; a != nil {
			steps = slices.DeleteFunc(slices.Clone(steps), func(s whoPlanStep) bool {
				return cmp.Or(cmp.Compare(s.perm, a.Permission), cmp.Compare(s.typ, a.Subject.Object.Type)) < 0
			})
		}
		if len(steps) == 0 {
			continue
		}
		more, err := e.whoPermission(ctx, snap, checked, req, now, steps, yield)
		if err != nil {
			return fmt.Errorf("who can access %s#%s: %w", req.Resource, steps[0].perm, err)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// whoPermission streams the rows of one permission, for the subject
// types of steps: from one walk when it is exact (see whoWalk), else a
// LookupSubjects per type. The walk reads snap, everything that checks
// reads checked (see accessSnapshot). more is false once yield asked to
// stop.
func (e *Engine) whoPermission(ctx context.Context, snap, checked Snapshot, req WhoRequest, now time.Time, steps []whoPlanStep, yield func(AccessRow) bool) (more bool, err error) {
	perm := steps[0].perm
	types := make([]string, len(steps))
	for i, s := range steps {
		types[i] = s.typ
	}
	ev, err := e.newEvaluation(ctx, snap, graph.SubjectRef{}, req.Context, now)
	if err != nil {
		return false, err
	}
	w, err := walkWho(ev, req.Resource, perm, types, min(e.cfg.MaxAccessObjects, e.bounds.walkNodes))
	e.release(ev)
	whole := true
	if errors.Is(err, ErrAccessTooLarge) {
		// Too many subjects to hold at once: a window at a time.
		w, err, whole = &whoWalk{}, nil, false
	}
	if err != nil {
		return false, err
	}
	if !w.exact {
		for _, step := range steps {
			if more, err := e.whoStep(ctx, checked, req, now, step, whole, yield); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	g := w.g
	width := g.ends()
	byType := map[string][]int32{}
	for i := 1; i < len(g.nodes); i++ {
		if n := g.nodes[i].n; n.rel == "" {
			byType[n.typ] = append(byType[n.typ], int32(i))
		}
	}
	for _, typ := range types {
		wild, hasWild := g.index[node{typ, graph.Wildcard, ""}]
		if hasWild && !w.monotone {
			// The subjects a wildcard row excludes are on the subtracted
			// side, which the walk left out.
			if more, err := e.whoStep(ctx, checked, req, now, whoPlanStep{perm: perm, typ: typ}, true, yield); err != nil || !more {
				return false, err
			}
			continue
		}
		var found []int32
		for _, i := range byType[typ] {
			id := g.nodes[i].n.id
			if a := req.After; a != nil && a.Permission == perm && a.Subject.Object.Type == typ && id <= a.Subject.Object.ID {
				continue
			}
			found = append(found, i)
		}
		slices.SortFunc(found, func(a, b int32) int { return cmp.Compare(g.nodes[a].n.id, g.nodes[b].n.id) })
		build := func(ctx context.Context, k int) (AccessRow, bool, error) {
			i := found[k]
			x := &g.nodes[i]
			ends := width[i]
			if hasWild && x.n.id != graph.Wildcard {
				ends = max(ends, width[wild]) // the wildcard grants the subject too
			}
			q := rowRequest{snap: checked, caveatCtx: req.Context, now: now, res: req.Resource, perm: perm,
				subject: graph.SubjectRef{Object: graph.ObjectRef{Type: typ, ID: x.n.id}}}
			q.eval = q.subject
			if x.n.id == graph.Wildcard {
				q.eval.Object.ID = freshWalkID(g, typ)
			}
			path := func(clean bool, missing []string) *Path { return g.pathDown(i, clean, q.subject, missing) }
			return e.graphRow(ctx, q, path, x.clean, w.monotone, ends)
		}
		if more, err := e.streamGraphRows(ctx, len(found), build, !w.monotone, yield); err != nil || !more {
			return false, err
		}
	}
	return true, nil
}

// freshWalkID returns an ID of typ that no node of g has.
func freshWalkID(g *accessGraph, typ string) string {
	id := "unlisted"
	for i := 0; ; i++ {
		if _, taken := g.index[node{typ, id, ""}]; !taken {
			return id
		}
		id = "unlisted" + strconv.Itoa(i)
	}
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
// false once yield asked to stop. It answers from one lookup of the
// permission when that stays within e.bounds.setEntries, else a window of
// subjects at a time (see whoWindows); whole false goes to the windows
// at once.
func (e *Engine) whoStep(ctx context.Context, snap Snapshot, req WhoRequest, now time.Time, step whoPlanStep, whole bool, yield func(AccessRow) bool) (more bool, err error) {
	if whole {
		more, err := e.whoWhole(ctx, snap, req, now, step, e.bounds.setEntries, yield)
		if !errors.Is(err, errSetsTooLarge) {
			return more, err
		}
	}
	return e.whoWindows(ctx, snap, req, now, step, yield)
}

// whoWhole is whoStep from one LookupSubjects, whose sets may list at
// most maxEntries subjects together (0: any number; see setOptions).
func (e *Engine) whoWhole(ctx context.Context, snap Snapshot, req WhoRequest, now time.Time, step whoPlanStep, maxEntries int, yield func(AccessRow) bool) (more bool, err error) {
	var found []SubjectResult
	set, err := e.lookupSubjects(ctx, snap, LookupSubjectsRequest{Resource: req.Resource, Permission: step.perm, SubjectType: step.typ, Context: req.Context, Now: now},
		setOptions{proofs: true, maxEntries: maxEntries}, func(r SubjectResult) bool {
			found = append(found, r)
			return len(found) <= e.cfg.MaxAccessObjects
		})
	if err != nil {
		return false, err
	}
	if len(found) > e.cfg.MaxAccessObjects {
		if maxEntries > 0 {
			return false, errSetsTooLarge // windows hold fewer
		}
		return false, fmt.Errorf("%w: more than %d subjects (MaxAccessObjects)", ErrAccessTooLarge, e.cfg.MaxAccessObjects)
	}
	slices.SortFunc(found, func(a, b SubjectResult) int { return cmp.Compare(a.Subject.Object.ID, b.Subject.Object.ID) })
	var qs []rowRequest
	for _, f := range found {
		if a := req.After; a != nil && a.Permission == step.perm && a.Subject.Object.Type == step.typ && f.Subject.Object.ID <= a.Subject.Object.ID {
			continue
		}
		q := rowRequest{snap: snap, caveatCtx: req.Context, now: now, res: req.Resource, perm: step.perm, subject: f.Subject, eval: f.Subject, set: set}
		if f.Subject.Object.ID == graph.Wildcard {
			q.excluded = make([]string, len(f.Excluded))
			for i, x := range f.Excluded {
				q.excluded[i] = x.Object.ID
			}
			q.eval.Object.ID = freshID(found, q.excluded)
		}
		qs = append(qs, q)
	}
	return e.streamRows(ctx, qs, yield)
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
