package check

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// rowRequest is what building one access row needs.
type rowRequest struct {
	snap      Snapshot
	caveatCtx map[string]any
	now       time.Time
	res       graph.ObjectRef
	perm      string
	subject   graph.SubjectRef // the row's subject
	// eval is the subject evaluated: subject itself, or for a wildcard
	// row an ID no relationship names, which holds exactly what the
	// wildcard grants.
	eval graph.SubjectRef
}

// accessRow answers one row: the permissionship, a shortest path, when
// it ends and how it is held. ok is false when the subject does not hold
// the access after all.
func (e *Engine) accessRow(ctx context.Context, q rowRequest) (AccessRow, bool, error) {
	ev, err := e.newEvaluation(ctx, q.snap, q.eval, q.caveatCtx, q.now)
	if err != nil {
		return AccessRow{}, false, err
	}
	r, err := ev.check(q.res, q.perm, true)
	e.release(ev)
	if err != nil {
		return AccessRow{}, false, err
	}
	if r.Permissionship == NoPermission {
		return AccessRow{}, false, nil
	}
	first, err := e.answerAt(ctx, q.snap, q.eval, q.caveatCtx, q.res, q.perm, q.now)
	if err != nil {
		return AccessRow{}, false, err
	}
	ends, err := e.endsAfter(ctx, q.snap, q.eval, q.caveatCtx, q.res, q.perm, q.now, first)
	if err != nil {
		return AccessRow{}, false, err
	}
	if r.Path != nil {
		r.Path.Subject = q.subject
		relabel(r.Path, q.subject)
	}
	row := AccessRow{Resource: q.res, Permission: q.perm, Subject: q.subject, Permissionship: r.Permissionship,
		Missing: slices.Clone(r.Missing), Path: r.Path, EndsAt: ends, Holdings: holdingsOf(r.Path, q.res)}
	row.Cursor = AccessCursor{Revision: q.snap.Reader.Revision(), Resource: q.res, Permission: q.perm, Subject: q.subject}
	return row, true, nil
}

// walkRow is the row of a subject an exact walk found clean: it holds
// the permission, by the path pn, until the widest chain's end (see
// accessGraph).
func (e *Engine) walkRow(q rowRequest, sub graph.SubjectRef, pn *pathNode, until int64) AccessRow {
	p := toPath(pn, sub, nil)
	row := AccessRow{Resource: q.res, Permission: q.perm, Subject: sub, Permissionship: HasPermission, Path: p,
		Holdings: holdingsOf(p, q.res)}
	if until != dispatch.Never {
		row.EndsAt = time.Unix(0, until).UTC()
	}
	row.Cursor = AccessCursor{Revision: q.snap.Reader.Revision(), Resource: q.res, Permission: q.perm, Subject: sub}
	return row
}

// relabel gives every chain of p the subject s.
func relabel(p *Path, s graph.SubjectRef) {
	p.Subject = s
	for _, a := range p.Also {
		relabel(a, s)
	}
}

// defaultPermissions lists the names a request without permissions asks
// about on def: its permissions, or its relations when it has none,
// sorted.
func defaultPermissions(def *schema.Definition) []string {
	var out []string
	for _, n := range def.Order {
		if def.Permissions[n] != nil {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		for _, n := range def.Order {
			if def.Relations[n] != nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// sortedUnique returns xs sorted without duplicates, as a new slice.
func sortedUnique(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}

// checkTypes checks that every type names a definition; part names the
// request field in the error.
func checkTypes(s *schema.Schema, types []string, part string) error {
	for _, t := range types {
		if s.Definitions[t] == nil {
			return &RequestError{Part: part, Message: fmt.Sprintf("type %q is not defined in the schema", t)}
		}
	}
	return nil
}
