package check

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Windows of subjects. A permission whose audience is too large to hold
// at once — every set between its subjects and the resource lists each
// of them, with a proof and an until — is answered a window of subjects
// at a time: the next whoWindowSubjects subjects of the type that
// relationships name, in ID order, read from the reverse index; a set
// evaluation narrowed to them (see setEval.only), which is exact for
// every subject it is narrowed to; their rows, in order. What a window
// holds is bounded by its subjects, not by the audience or the graph, and
// a call resumed with a cursor starts at the window after it, not at the
// first.

// accessBounds are what one who-can-access step holds: an engine's are
// defaultAccessBounds, and tests lower them to take every path on small
// worlds.
type accessBounds struct {
	// walkNodes bounds the objects of the walk that answers a monotone
	// permission whole (see walkWho).
	walkNodes int
	// setEntries bounds the subjects the sets of one lookup list
	// together, whole or in a window (see setEval.entries).
	setEntries int
	// windowSubjects is the most subjects of a window.
	windowSubjects int
}

// defaultAccessBounds keep one step within a few tens of MiB on the
// identity-platform graph (BENCHMARKS.md, "Windows of subjects").
var defaultAccessBounds = accessBounds{walkNodes: 1 << 16, setEntries: 1 << 17, windowSubjects: 16384}

// whoWindows streams the rows of one permission and subject type a
// window of subjects at a time, from the cursor's subject on when the
// cursor is in this step. Each window is sized from what the last one
// held per subject; one whose sets outgrow the bound anyway is halved; a
// window of one subject holds what it must (at most setWork
// sets). A permission a wildcard grants, or one set evaluation leaves to
// checks, is answered whole from the first subject not yet streamed (see
// whoWhole): its rows need every subject the relationships name.
func (e *Engine) whoWindows(ctx context.Context, snap Snapshot, req WhoRequest, now time.Time, step whoPlanStep, yield func(AccessRow) bool) (more bool, err error) {
	after := ""
	if a := req.After; a != nil && a.Permission == step.perm && a.Subject.Object.Type == step.typ {
		after = a.Subject.Object.ID
	}
	lookup := LookupSubjectsRequest{Resource: req.Resource, Permission: step.perm, SubjectType: step.typ, Context: req.Context, Now: now}
	// The first window is small; each next one is sized from what the
	// last held per subject, to fill half the bound.
	size := min(e.bounds.windowSubjects, 256)
	for first := true; ; first = false {
		ids, err := subjectsAfter(ctx, snap.Reader, step.typ, after, size, now)
		if err != nil {
			return false, err
		}
		if len(ids) == 0 && !first {
			return true, nil
		}
		// The first window is evaluated even when empty: a wildcard
		// grants subjects no relationship names.
		only := make(map[string]bool, len(ids))
		for _, id := range ids {
			only[id] = true
		}
		bound := e.bounds.setEntries
		if len(ids) == 1 {
			bound = 0
		}
		c, err := e.subjectSets(ctx, snap, lookup, now, setOptions{proofs: true, maxEntries: bound, only: only})
		switch {
		case errors.Is(err, errSetsTooLarge):
			size = max(1, len(ids)/2)
			continue
		case errors.Is(err, errSetFallback) || (err == nil && c.wildcard):
			if after != "" {
				resumed := req
				resumed.After = &AccessCursor{Revision: snap.Reader.Revision(), Resource: req.Resource, Permission: step.perm,
					Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: step.typ, ID: after}}}
				req = resumed
			}
			return e.whoWhole(ctx, snap, req, now, step, 0, yield)
		case err != nil:
			return false, err
		}
		var qs []rowRequest
		for _, id := range ids {
			if c.knownOf(id) == memberNo {
				continue
			}
			sub := graph.SubjectRef{Object: graph.ObjectRef{Type: step.typ, ID: id}}
			qs = append(qs, rowRequest{snap: snap, caveatCtx: req.Context, now: now, res: req.Resource, perm: step.perm,
				subject: sub, eval: sub, set: c.root})
		}
		if more, err := e.streamRows(ctx, qs, yield); err != nil || !more {
			return false, err
		}
		if len(ids) < size {
			return true, nil
		}
		after = ids[len(ids)-1]
		switch {
		case bound == 0:
			size = 2 // a window of one, held unbounded: grow slowly
		case c.held == 0:
			size = e.bounds.windowSubjects
		default:
			size = min(e.bounds.windowSubjects, max(1, len(ids)*(bound/2)/c.held))
		}
	}
}

// subjectsAfter returns the IDs of the first n plain subjects of typ that
// live relationships name, in ID order, after the ID after ("" for the
// first), read from the reverse index without holding more than n. A
// wildcard is not one of them.
func subjectsAfter(ctx context.Context, r storage.Reader, typ, after string, n int, now time.Time) ([]string, error) {
	ellipsis := ""
	opts := storage.QueryOptions{Now: now}
	if after != "" {
		// Strictly after this relationship comes every one naming after
		// itself, then the subjects after it.
		opts.After = &graph.Relationship{Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: typ, ID: after}}}
	}
	var ids []string
	for rel, err := range r.ReverseQueryRelationships(ctx, storage.ReverseFilter{Subject: storage.SubjectFilter{Type: typ, Relation: &ellipsis}}, opts) {
		if err != nil {
			return nil, fmt.Errorf("subjects of type %s: %w", typ, err)
		}
		id := rel.Subject.Object.ID
		if id == graph.Wildcard || (after != "" && id <= after) || (len(ids) > 0 && ids[len(ids)-1] == id) {
			continue
		}
		if len(ids) == n {
			break
		}
		ids = append(ids, id)
	}
	return ids, nil
}
