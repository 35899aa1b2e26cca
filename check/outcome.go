package check

import (
	"slices"

	"github.com/pembadb/pemba/check/dispatch"
)

// outcome is the evaluator's answer for one resource: a dispatch.Answer
// plus, in explain mode, the access path that proves it.
type outcome struct {
	perm    Permissionship
	low     dispatch.Frame // see dispatch.Frame
	until   int64          // see dispatch.Answer.Until
	missing []string
	path    *pathNode
}

// noOutcome is a plain "no": it rests on nothing and expires never.
var noOutcome = outcome{perm: NoPermission, low: dispatch.NoLow, until: dispatch.Never}

// answer is o without its path, for the resolver layers.
func (o outcome) answer() dispatch.Answer {
	return dispatch.Answer{Permissionship: o.perm, Missing: o.missing, Low: o.low, Until: o.until}
}

// fromAnswer is a resolver layer's answer as an outcome (without a path).
func fromAnswer(a dispatch.Answer) outcome {
	return outcome{perm: a.Permissionship, missing: a.Missing, low: a.Low, until: a.Until}
}

// exact reports whether the outcome holds regardless of any evaluation in
// progress, so it may be memoized (see dispatch.Frame, "Reuse").
func (o outcome) exact() bool { return o.answer().Shareable() }

// or combines o with x under union (three-valued: yes wins, then maybe).
// A union that grants holds while any granting side does: its until is
// the latest of theirs, and a side that does not grant cannot end it
// (expirations only take relationships away, so a side's "no" can only
// turn into a "yes" by its own until, which a re-check then sees).
func (o *outcome) or(x outcome) {
	o.low = min(o.low, x.low)
	switch {
	case o.perm == HasPermission && x.perm == HasPermission:
		o.until = max(o.until, x.until)
		return
	case o.perm == HasPermission:
		return
	case x.perm == HasPermission:
		o.perm, o.missing, o.path, o.until = HasPermission, nil, x.path, x.until
		return
	}
	o.until = min(o.until, x.until)
	switch {
	case x.perm == Conditional:
		if o.perm != Conditional {
			o.path = x.path
		}
		o.perm = Conditional
		o.missing = mergeMissing(o.missing, x.missing)
	}
}

// and combines o with x under intersection (no wins, then maybe). A
// "no" holds while any side's "no" does: the latest of their untils; a
// side that grants cannot end it.
func (o *outcome) and(x outcome) {
	o.low = min(o.low, x.low)
	switch {
	case o.perm == NoPermission && x.perm == NoPermission:
		o.until = max(o.until, x.until)
	case o.perm == NoPermission:
	case x.perm == NoPermission:
		o.until = x.until
	default:
		o.until = min(o.until, x.until)
	}
	switch {
	case o.perm == NoPermission:
	case x.perm == NoPermission:
		o.perm, o.missing, o.path = NoPermission, nil, nil
	case o.perm == Conditional || x.perm == Conditional:
		o.perm = Conditional
		o.missing = mergeMissing(o.missing, x.missing)
		o.path = joinPaths(o.path, x.path)
	default:
		o.path = joinPaths(o.path, x.path)
	}
}

// minus combines base o with the subtracted x under exclusion. A "no"
// holds while its reason does: the base's "no", or the subtracted side's
// grant.
func (o *outcome) minus(x outcome) {
	o.low = min(o.low, x.low)
	switch {
	case o.perm == NoPermission:
	case x.perm == HasPermission:
		o.until = x.until
	default:
		o.until = min(o.until, x.until)
	}
	switch {
	case o.perm == NoPermission:
	case x.perm == HasPermission:
		o.perm, o.missing, o.path = NoPermission, nil, nil
	case x.perm == Conditional:
		o.perm = Conditional
		o.missing = mergeMissing(o.missing, x.missing)
	}
}

// mergeMissing returns the sorted union of two sorted sets of missing
// caveat parameters; it may return a or b itself.
func mergeMissing(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	m := append(slices.Clone(a), b...)
	slices.Sort(m)
	return slices.Compact(m)
}
