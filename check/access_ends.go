package check

import (
	"context"
	"fmt"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
)

// MaxEndsAtSteps bounds the evaluations EndsAt makes after the first: one
// per expiration instant at which the answer might change. An access that
// more expiring relationships influence in turn is reported as an error
// naming this limit rather than with a guessed end.
const MaxEndsAtSteps = 256

// EndsAt answers req (its Explain is ignored) and, for an access granted
// (HasPermission or Conditional) at req.Now, returns the first instant
// after req.Now at which no granting path remains if nothing is written:
// zero when the access is standing (some granting path never expires).
//
// Each answer carries the earliest expiration among the relationships
// that influenced it (outcome.until), and the answer holds unchanged up
// to that instant, which is what lets the cache serve it until then. So
// EndsAt evaluates again at that instant, and again, until the answer is
// NoPermission (the access ends then) or rests on no expiring
// relationship (it stands). Every step passes one expiration instant of
// the snapshot, so the walk ends; it is bounded by MaxEndsAtSteps. A
// permission that only shrinks over time (no relationship that can
// expire is subtracted) is bisected after a few steps instead, which
// needs no such bound.
func (e *Engine) EndsAt(ctx context.Context, snap Snapshot, req Request) (endsAt time.Time, granted bool, err error) {
	if err := validate(snap.Schema, req.Resource, req.Permission, req.Subject); err != nil {
		return time.Time{}, false, err
	}
	now := requestNow(req.Now)
	o, err := e.answerAt(ctx, snap, req.Subject, req.Context, req.Resource, req.Permission, now)
	if err != nil {
		return time.Time{}, false, err
	}
	if o.perm == NoPermission {
		return time.Time{}, false, nil
	}
	t, err := e.endsAfter(ctx, snap, req.Subject, req.Context, req.Resource, req.Permission, now, o)
	return t, true, err
}

// answerAt answers whether sub has perm on res at instant at, with the
// earliest expiration that influenced the answer.
func (e *Engine) answerAt(ctx context.Context, snap Snapshot, sub graph.SubjectRef, caveatCtx map[string]any, res graph.ObjectRef, perm string, at time.Time) (outcome, error) {
	ev, err := e.newEvaluation(ctx, snap, sub, caveatCtx, at)
	if err != nil {
		return outcome{}, err
	}
	defer e.release(ev)
	out, err := ev.checkBatch(res.Type, perm, []string{res.ID}, 1)
	if err != nil {
		return outcome{}, fmt.Errorf("check %s#%s@%s at %s: %w", res, perm, sub, at.Format(time.RFC3339Nano), err)
	}
	return out[0], nil
}

// endsAfter follows a granting answer o, given at now, to the first
// instant at which the answer is NoPermission (see EndsAt). It steps from
// one expiration to the next; when the permission only shrinks as time
// passes (shrinksOverTime) and the steps go on, it bisects instead, so an
// access that many expiring relationships influence (members of large
// teams, say) costs about a hundred evaluations at most.
func (e *Engine) endsAfter(ctx context.Context, snap Snapshot, sub graph.SubjectRef, caveatCtx map[string]any, res graph.ObjectRef, perm string, now time.Time, o outcome) (time.Time, error) {
	shrinks := shrinksOverTime(snap.Schema, res.Type, perm)
	at := now
	for step := 0; ; step++ {
		if o.until == dispatch.Never {
			return time.Time{}, nil
		}
		if shrinks && step == endsSteps {
			return e.endsBisect(ctx, snap, sub, caveatCtx, res, perm, at, o)
		}
		if step == MaxEndsAtSteps {
			return time.Time{}, fmt.Errorf("end of %s#%s@%s: more than %d expirations influence the access (MaxEndsAtSteps)", res, perm, sub, MaxEndsAtSteps)
		}
		next := time.Unix(0, o.until).UTC()
		if !next.After(at) {
			// An answer never rests on a relationship expired at its
			// instant; stepping on guarantees progress regardless.
			next = at.Add(time.Nanosecond)
		}
		at = next
		var err error
		if o, err = e.answerAt(ctx, snap, sub, caveatCtx, res, perm, at); err != nil {
			return time.Time{}, err
		}
		if o.perm == NoPermission {
			return at, nil
		}
	}
}

// endsSteps is how many expirations endsAfter steps through before it
// bisects a permission that only shrinks over time.
const endsSteps = 8

// endsBisect finds the end of an access that only shrinks over time,
// granted at instant at with answer o. The access is granted on an
// interval [at, end): end is the first instant of the last probe that was
// not granted once the answer at the latest probe that was granted holds
// up to it. Probes alternate between that answer's next expiration (a
// step, as endsAfter takes) and the middle of the interval still unknown,
// so there are at most about 2·63 of them.
func (e *Engine) endsBisect(ctx context.Context, snap Snapshot, sub graph.SubjectRef, caveatCtx map[string]any, res graph.ObjectRef, perm string, at time.Time, o outcome) (time.Time, error) {
	hi := int64(dispatch.Never - 1) // after every expiration
	last, err := e.answerAt(ctx, snap, sub, caveatCtx, res, perm, time.Unix(0, hi))
	if err != nil {
		return time.Time{}, err
	}
	if last.perm != NoPermission {
		return time.Time{}, nil // held once every expiring relationship is gone: standing
	}
	lo := at.UnixNano()
	for i := 0; ; i++ {
		if o.until == dispatch.Never {
			return time.Time{}, nil
		}
		next := max(o.until, lo+1)
		if next >= hi {
			return time.Unix(0, hi).UTC(), nil
		}
		if i == 4*64 {
			return time.Time{}, fmt.Errorf("end of %s#%s@%s: bisection did not converge", res, perm, sub)
		}
		probe := next
		if i%2 == 1 {
			probe = max(lo+(hi-lo)/2, next)
		}
		p, err := e.answerAt(ctx, snap, sub, caveatCtx, res, perm, time.Unix(0, probe))
		if err != nil {
			return time.Time{}, err
		}
		if p.perm == NoPermission {
			hi = probe
		} else {
			lo, o = probe, p
		}
	}
}
