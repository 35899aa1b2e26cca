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

// deps folds x's dependencies (cycle assumptions, see dispatch.Frame, and
// expirations) into o.
func (o *outcome) deps(x outcome) {
	o.low = min(o.low, x.low)
	o.until = min(o.until, x.until)
}

// or combines o with x under union (three-valued: yes wins, then maybe).
func (o *outcome) or(x outcome) {
	o.deps(x)
	switch {
	case o.perm == HasPermission:
	case x.perm == HasPermission:
		o.perm, o.missing, o.path = HasPermission, nil, x.path
	case x.perm == Conditional:
		if o.perm != Conditional {
			o.path = x.path
		}
		o.perm = Conditional
		o.missing = mergeMissing(o.missing, x.missing)
	}
}

// and combines o with x under intersection (no wins, then maybe).
func (o *outcome) and(x outcome) {
	o.deps(x)
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

// minus combines base o with the subtracted x under exclusion.
func (o *outcome) minus(x outcome) {
	o.deps(x)
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
