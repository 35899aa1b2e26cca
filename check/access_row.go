package check

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

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
	// excluded lists, for a wildcard row, the subjects it leaves out.
	excluded []string
	// set, when not nil, is what a set evaluation that kept proofs knows
	// of the permission's subjects: a subject it holds "yes" needs no
	// check for its answer at now nor, mostly, for its path (from the
	// proofs) and its end (see setAnswer).
	set *setAnswer
}

// accessRow answers one row: the permissionship, a shortest path, when
// it ends and how it is held. ok is false when the subject does not hold
// the access after all. Its answer at q.now comes from q.set when that
// holds the subject "yes", else from a check.
func (e *Engine) accessRow(ctx context.Context, q rowRequest) (AccessRow, bool, error) {
	if first, _, ok := q.held(); ok {
		return e.accessRowFrom(ctx, q, first)
	}
	first, err := e.answerAt(ctx, q.snap, q.eval, q.caveatCtx, q.res, q.perm, q.now)
	if err != nil {
		return AccessRow{}, false, err
	}
	return e.accessRowFrom(ctx, q, first)
}

// held returns q's subject's outcome at q.now from q.set, when that holds
// it "yes" (see setAnswer.held); a wildcard row's is left to a check.
func (q *rowRequest) held() (o outcome, exact, ok bool) {
	if q.set == nil || q.eval != q.subject {
		return outcome{}, false, false
	}
	return q.set.held(q.subject.Object.ID)
}

// accessRowFrom is accessRow given first, the answer at q.now.
func (e *Engine) accessRowFrom(ctx context.Context, q rowRequest, first outcome) (AccessRow, bool, error) {
	if first.perm == NoPermission {
		return AccessRow{}, false, nil
	}
	if first.perm == HasPermission && q.set != nil && q.eval == q.subject {
		if pn := q.set.path(q.snap.Schema, q.subject.Object.ID); pn != nil {
			return e.rowWithPath(ctx, q, first, Result{Permissionship: HasPermission, Path: toPath(pn, q.subject, nil)})
		}
	}
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
	return e.rowWithPath(ctx, q, first, r)
}

// rowWithPath completes the row of q, whose answer at q.now is first,
// with the permissionship and path of r: when it ends and how it is held.
// The end is q.set's until for the subject when that is exact (see
// setAnswer), else found by checks from first's until on (endsAfter).
func (e *Engine) rowWithPath(ctx context.Context, q rowRequest, first outcome, r Result) (AccessRow, bool, error) {
	var ends time.Time
	if o, exact, ok := q.held(); ok && exact && r.Permissionship == HasPermission {
		if o.until != dispatch.Never {
			ends = time.Unix(0, o.until).UTC()
		}
	} else {
		var err error
		if ends, err = e.endsAfter(ctx, q.snap, q.eval, q.caveatCtx, q.res, q.perm, q.now, first); err != nil {
			return AccessRow{}, false, err
		}
	}
	relabel(r.Path, q.subject)
	row := AccessRow{Resource: q.res, Permission: q.perm, Subject: q.subject, Excluded: q.excluded, Permissionship: r.Permissionship,
		Missing: slices.Clone(r.Missing), Path: r.Path, EndsAt: ends, Holdings: holdingsOf(r.Path, q.res)}
	row.Cursor = AccessCursor{Revision: q.snap.Reader.Revision(), Resource: q.res, Permission: q.perm, Subject: q.subject}
	return row, true, nil
}

// streamRows answers the rows of qs with accessRow, up to Concurrency at
// a time, and streams them in order; more is false once yield asked to
// stop. The first window is one row, so the first row comes as soon as
// it is built; later ones are larger, so the goroutines stay busy.
func (e *Engine) streamRows(ctx context.Context, qs []rowRequest, yield func(AccessRow) bool) (more bool, err error) {
	return e.streamBuilt(ctx, len(qs), func(ctx context.Context, i int) (AccessRow, bool, error) { return e.accessRow(ctx, qs[i]) }, yield)
}

// streamBuilt is streamRows for n rows that build makes: ok false leaves
// a row out.
func (e *Engine) streamBuilt(ctx context.Context, n int, build func(ctx context.Context, i int) (AccessRow, bool, error), yield func(AccessRow) bool) (more bool, err error) {
	type result struct {
		row AccessRow
		ok  bool
	}
	window := 1
	for start := 0; start < n; {
		end := min(start+window, n)
		res := make([]result, end-start)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(e.cfg.Concurrency)
		for i := start; i < end; i++ {
			g.Go(func() error {
				row, ok, err := build(gctx, i)
				res[i-start] = result{row, ok}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return false, err
		}
		for _, r := range res {
			if r.ok && !yield(r.row) {
				return false, nil
			}
		}
		start, window = end, 16*e.cfg.Concurrency
	}
	return true, nil
}

// streamGraphRows streams the n rows build makes from a walk's graph:
// concurrently (streamBuilt) when each needs a check, else one after
// another, which costs less when most need none.
func (e *Engine) streamGraphRows(ctx context.Context, n int, build func(ctx context.Context, i int) (AccessRow, bool, error), checked bool, yield func(AccessRow) bool) (more bool, err error) {
	if checked {
		return e.streamBuilt(ctx, n, build, yield)
	}
	for i := range n {
		row, ok, err := build(ctx, i)
		if err != nil {
			return false, err
		}
		if ok && !yield(row) {
			return false, nil
		}
	}
	return true, nil
}

// graphRow is the row of a node an exact walk reached (see accessGraph
// and skeletonFrom). For a monotone permission, a clean node holds it by
// its shortest clean path until until (the widest chain's end), and any
// other conditionally, with the missing parameters a check reports.
// Otherwise a check decides the row and its end (EndsAt's way); the path
// is the shortest clean one for HasPermission, the shortest one for
// Conditional. Should the check contradict the walk (a grant where the
// node is not clean), the row is answered as accessRow does.
func (e *Engine) graphRow(ctx context.Context, q rowRequest, path func(clean bool, missing []string) *Path, clean, monotone bool, until int64) (AccessRow, bool, error) {
	perm, missing := HasPermission, []string(nil)
	if !monotone || !clean {
		o, err := e.answerAt(ctx, q.snap, q.eval, q.caveatCtx, q.res, q.perm, q.now)
		if err != nil {
			return AccessRow{}, false, err
		}
		switch {
		case o.perm == NoPermission && !monotone:
			return AccessRow{}, false, nil
		case o.perm == NoPermission || (o.perm == HasPermission && !clean):
			return e.accessRow(ctx, q)
		}
		perm, missing = o.perm, slices.Clone(o.missing)
		if !monotone {
			ends, err := e.endsAfter(ctx, q.snap, q.eval, q.caveatCtx, q.res, q.perm, q.now, o)
			if err != nil {
				return AccessRow{}, false, err
			}
			until = dispatch.Never
			if !ends.IsZero() {
				until = ends.UnixNano()
			}
		}
	}
	p := path(perm == HasPermission, missing)
	row := AccessRow{Resource: q.res, Permission: q.perm, Subject: q.subject, Permissionship: perm, Missing: missing, Path: p,
		Holdings: holdingsOf(p, q.res)}
	if until != dispatch.Never {
		row.EndsAt = time.Unix(0, until).UTC()
	}
	row.Cursor = AccessCursor{Revision: q.snap.Reader.Revision(), Resource: q.res, Permission: q.perm, Subject: q.subject}
	return row, true, nil
}

// relabel gives every chain of p (nil: none) the subject s.
func relabel(p *Path, s graph.SubjectRef) {
	if p == nil {
		return
	}
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
