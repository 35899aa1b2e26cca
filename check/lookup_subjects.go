package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// LookupSubjectsRequest asks which subjects of SubjectType (with
// SubjectRelation, "" for plain objects) have Permission on Resource.
type LookupSubjectsRequest struct {
	Resource        graph.ObjectRef
	Permission      string
	SubjectType     string
	SubjectRelation string
	Context         map[string]any
	Now             time.Time
}

// SubjectResult is one subject found by LookupSubjects. A wildcard
// (`user:*`) result means every subject of the type except Excluded.
type SubjectResult struct {
	Subject        graph.SubjectRef
	Permissionship Permissionship // HasPermission or Conditional
	Missing        []string
	// Excluded lists, for a wildcard, the subjects that do not have the
	// permission (NO_PERMISSION), sorted.
	Excluded []graph.SubjectRef
}

// LookupSubjects streams the subjects that have req.Permission on
// req.Resource, concrete subjects first (in the order they were found;
// also those a wildcard result covers, when relationships name them),
// then the wildcard, if every other subject of the type has it.
//
// It first computes the subjects as sets, level by level (see setEval),
// and checks only the subjects a caveat leaves open. Where set evaluation
// does not apply (a subject set request, a relationship cycle, a chain
// deeper than the depth limit) it falls back to the walk below.
//
// It walks forward from the resource through every relation and arrow the
// permission can use (subtracted sides included, since they mention the
// subjects a wildcard excludes), collecting the subjects of the requested
// type, then checks each. A subject never mentioned there has the answer
// of a fresh, unused ID, which decides the wildcard.
//
// When the walk is exact (see subjectCandidates), a subject it reached
// over uncaveated relationships is streamed without a check: a monotone
// permission grants every subject at the end of such a chain, and a
// wildcard reached that way grants everyone. Only the subjects reached
// solely through caveated relationships are checked.
func (e *Engine) LookupSubjects(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, yield func(SubjectResult) bool) error {
	_, err := e.lookupSubjects(ctx, snap, req, setOptions{}, yield)
	return err
}

// setOptions tune a set evaluation.
type setOptions struct {
	// proofs: record why each subject holds the permission (see proof).
	proofs bool
	// maxEntries, when not 0, bounds the subjects the evaluation's sets
	// list, together (see setEval.entries): past it the evaluation fails
	// with errSetsTooLarge.
	maxEntries int
	// only, when set, narrows the evaluation to a window of subjects
	// (see setEval.only, setEval.window).
	only map[string]bool
}

// lookupSubjects is LookupSubjects, which also returns what the set
// evaluation knows of the subjects (nil when it did not answer the
// request; see setAnswer); with opts.proofs set, that includes why each
// subject holds the permission.
func (e *Engine) lookupSubjects(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, opts setOptions, yield func(SubjectResult) bool) (*setAnswer, error) {
	if err := validate(snap.Schema, req.Resource, req.Permission, graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: "x"}, Relation: req.SubjectRelation}); err != nil {
		return nil, fmt.Errorf("lookup subjects: %w", err)
	}
	now := requestNow(req.Now)
	// Every subject with the permission holds each intersection's first
	// branch and each exclusion's base, so walking those alone meets it,
	// by its ID or through a wildcard. Only when a wildcard was met does
	// the answer need the subjects the other sides mention (a wildcard's
	// exclusions, or the concrete subjects an intersection narrows it to):
	// then the walk is repeated over everything.
	c, err := e.subjectSets(ctx, snap, req, now, opts)
	if errors.Is(err, errSetFallback) {
		c, err = e.subjectCandidates(ctx, snap, req, now, true)
		if err == nil && c.wildcard && !c.exact {
			c, err = e.subjectCandidates(ctx, snap, req, now, false)
		}
	}
	if err == nil && c.known != nil && c.wildcard {
		// Set evaluation keeps only the subjects whose membership differs
		// from the wildcard's; the walk of the primary branches meets the
		// ones the relationships name, listed beside the wildcard as the
		// walk's own answers list them. Their membership is known.
		err = c.addWalked(e.subjectCandidates(ctx, snap, req, now, true))
	}
	if err != nil {
		return nil, fmt.Errorf("lookup subjects %s#%s@%s: %w", req.Resource.String(), req.Permission, req.SubjectType, err)
	}
	if len(c.ids) == 0 && !c.wildcard {
		return c.root, nil
	}
	// A check rejects a context that cannot be hashed; so does a lookup
	// that skips the checks.
	if _, err := contextHash(req.Context); err != nil {
		return nil, fmt.Errorf("lookup subjects: %w", err)
	}
	// decided returns what the walk or the sets decided of the i-th
	// candidate: "yes" granted, "no" denied, "maybe" a check decides.
	decided := func(i int) member {
		if c.known != nil {
			return c.knownAt(i)
		}
		if c.exact && (c.wildcardClean || c.clean[c.ids[i]]) {
			return memberYes
		}
		return memberMaybe
	}
	check := func(ctx context.Context, id string) (Result, error) {
		sub := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
		ev, err := e.newEvaluation(ctx, snap, sub, req.Context, now)
		if err != nil {
			return Result{}, err
		}
		defer e.release(ev)
		return ev.check(req.Resource, req.Permission, false)
	}
	// Candidates are checked a window at a time, on up to Concurrency
	// goroutines, and streamed in the order the walk met them.
	var excluded []graph.SubjectRef
	window := 16 * e.cfg.Concurrency
	results := make([]Result, min(window, len(c.ids)))
	known := make([]member, len(results))
	for start := 0; start < len(c.ids); start += window {
		ids := c.ids[start:min(start+window, len(c.ids))]
		for i := range ids {
			known[i] = decided(start + i)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(e.cfg.Concurrency)
		for i, id := range ids {
			if known[i] != memberMaybe {
				continue
			}
			g.Go(func() error {
				r, err := check(gctx, id)
				results[i] = r
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, fmt.Errorf("lookup subjects: %w", err)
		}
		for i, id := range ids {
			sub := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: id}, Relation: req.SubjectRelation}
			if known[i] == memberYes {
				if !yield(SubjectResult{Subject: sub, Permissionship: HasPermission}) {
					return c.root, nil
				}
				continue
			}
			r := results[i]
			if known[i] == memberNo || r.Permissionship == NoPermission {
				excluded = append(excluded, sub)
				continue
			}
			if !yield(SubjectResult{Subject: sub, Permissionship: r.Permissionship, Missing: r.Missing}) {
				return c.root, nil
			}
		}
	}
	if !c.wildcard {
		return c.root, nil
	}
	wild := graph.SubjectRef{Object: graph.ObjectRef{Type: req.SubjectType, ID: graph.Wildcard}}
	if c.exact && c.wildcardClean {
		yield(SubjectResult{Subject: wild, Permissionship: HasPermission})
		return c.root, nil
	}
	slices.SortFunc(excluded, func(a, b graph.SubjectRef) int { return a.Compare(b) })
	if c.known != nil && c.known.def == memberYes {
		yield(SubjectResult{Subject: wild, Permissionship: HasPermission, Excluded: excluded})
		return c.root, nil
	}
	// A fresh ID stands for every subject the walk did not meet.
	fresh := "unlisted"
	for i := 0; slices.Contains(c.ids, fresh); i++ {
		fresh = "unlisted" + strconv.Itoa(i)
	}
	r, err := check(ctx, fresh)
	if err != nil {
		return nil, fmt.Errorf("lookup subjects: %w", err)
	}
	if r.Permissionship == NoPermission {
		return c.root, nil
	}
	yield(SubjectResult{Subject: wild, Permissionship: r.Permissionship, Missing: r.Missing, Excluded: excluded})
	return c.root, nil
}

// candidates is what the forward walk of LookupSubjects found.
type candidates struct {
	// ids are the subjects of the requested type met, deduplicated, in
	// the order met; wildcard: a wildcard of the type was met.
	ids      []string
	wildcard bool
	// exact: the permission is monotone and the walk met nothing a check
	// would judge differently from reachability except caveats, so every
	// subject in clean (reached over uncaveated relationships only) has
	// the permission, and so does everyone when wildcardClean.
	exact         bool
	clean         map[string]bool
	wildcardClean bool
	// known, when set, is the subjects' membership computed by set
	// evaluation (see subjectSets): only its "maybe" members are checked.
	// numbers numbered its subjects (see knownOf).
	known   *subjectSet
	numbers *subjectIDs
	// listed holds the known memberships of the first len(listed) ids,
	// those set evaluation listed, in known's order (see knownAt).
	listed []member
	// root names known, the permission's set (with the records of why
	// its subjects are in it when the evaluation kept proofs), and says
	// how far its untils go.
	root *setAnswer
	// held counts the subjects the evaluation's sets listed together,
	// when it was bounded (see setOptions.maxEntries).
	held int
}

// knownOf returns the known membership of the subject of ID id.
func (c *candidates) knownOf(id string) member {
	return c.known.get(c.numbers.numberOf(id))
}

// knownAt returns the known membership of c.ids[i], as set evaluation
// listed it (listed), without looking the subject up again.
func (c *candidates) knownAt(i int) member {
	if i < len(c.listed) {
		return c.listed[i]
	}
	return c.knownOf(c.ids[i])
}

// addWalked adds the subjects a walk met (when it succeeded) to c.ids,
// after c's own, once each.
func (c *candidates) addWalked(walk candidates, err error) error {
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(c.ids))
	for _, id := range c.ids {
		seen[id] = true
	}
	for _, id := range walk.ids {
		if !seen[id] {
			seen[id] = true
			c.ids = append(c.ids, id)
		}
	}
	return nil
}

// subjectSets computes the subjects of req by set evaluation (see
// setEval), as candidates whose known membership decides all but the
// "maybe" ones. It returns errSetFallback where set evaluation does not
// apply.
func (e *Engine) subjectSets(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, now time.Time, opts setOptions) (candidates, error) {
	if req.SubjectRelation != "" {
		return candidates{}, errSetFallback // a subject set has itself: leave it to checks
	}
	ev, err := e.newEvaluation(ctx, snap, graph.SubjectRef{}, req.Context, now)
	if err != nil {
		return candidates{}, err
	}
	defer e.release(ev)
	se := newSetEval(ev, req.SubjectType)
	se.proofs, se.maxEntries, se.window = opts.proofs, opts.maxEntries, opts.only != nil
	if opts.only != nil {
		names := slices.Sorted(maps.Keys(opts.only))
		nums := make([]subjectID, len(names))
		if !se.ids.internAll(names, nums) {
			return candidates{}, errSetFallback
		}
		se.only = make(map[subjectID]bool, len(nums))
		for _, id := range nums {
			se.only[id] = true
		}
		se.onlyList, se.onlyNames = nums, names
	}
	if !opts.proofs && opts.only == nil && e.cfg.CacheEntries > 0 {
		// Proofs keep the sets below alive, which the cache's estimate
		// does not count: only plain sets are shared.
		se.cache = &e.sets
	}
	res, err := se.batch(req.Resource.Type, req.Permission, []string{req.Resource.ID}, 1)
	if err != nil {
		return candidates{}, err
	}
	set := res[0].set
	c := candidates{known: set, numbers: se.ids, wildcard: set.def != memberNo, held: *se.entries,
		root: &setAnswer{ref: refOf(res[0], node{req.Resource.Type, req.Resource.ID, req.Permission}), ids: se.ids, exactEnds: !res[0].loose}}
	for i, id := range set.keys {
		if set.vals[i] != memberNo || c.wildcard {
			c.ids = append(c.ids, se.ids.name(id))
			c.listed = append(c.listed, set.vals[i])
		}
	}
	return c, nil
}

// subjectCandidates walks forward from the resource and collects the
// subjects of the requested type met on the way. The walk is breadth
// first and reads the objects of one type#relation together, ChunkSize IDs
// per storage query. It visits each object#relation at most twice: once
// reached through a caveated relationship and again if it is later
// reached over uncaveated ones only ("clean").
//
// The result is exact (see candidates) when the permission is monotone
// (monotoneFrom), the subject relation is a relation (a subject set has
// itself; a permission is computed), and the walk met no relationship the
// schema does not allow (checks ignore those), no wildcard object in a
// subject set or arrow, and no chain longer than MaxDepth (which a check
// reports as an error).
//
// With primary set, the walk leaves out every intersection branch but the
// first and every exclusion's subtracted side (see LookupSubjects).
//
// The steps are subjectWalk's: visit records an object#relation reached
// and queues it, add records a subject found, and expand follows one
// queued group (expandPermission, expandRelation) to the next level.
func (e *Engine) subjectCandidates(ctx context.Context, snap Snapshot, req LookupSubjectsRequest, now time.Time, primary bool) (candidates, error) {
	ev, err := e.newEvaluation(ctx, snap, graph.SubjectRef{}, nil, now)
	if err != nil {
		return candidates{}, err
	}
	w := newSubjectWalk(ev, req, primary)
	w.visit(req.Resource.Type, req.Resource.ID, req.Permission, true)
	for len(w.frontier) > 0 {
		cur := w.frontier
		w.frontier, w.index = nil, nil
		w.level++
		for _, g := range cur {
			if err := w.expand(g); err != nil {
				return candidates{}, err
			}
		}
	}
	return w.c, nil
}

// subjectWalk is the state of subjectCandidates' forward walk.
type subjectWalk struct {
	ev      *evaluation // reads storage; its subject is unused
	req     LookupSubjectsRequest
	primary bool
	// reach holds the (type, relation) pairs of a monotone permission
	// (monotoneFrom); meeting any other clears c.exact.
	reach map[[2]string]bool
	c     candidates // found so far; c.exact holds while nothing refutes it

	seen     map[node]uint8 // reached or reachedClean
	candSeen map[string]bool
	frontier []subjectGroup // the objects to expand at the next level
	index    map[subjectGroupKey]int
	level    int // check depth of the objects visited now
}

// The states of an object#relation the walk visited.
const (
	reached      = 1 // through some caveated relationship
	reachedClean = 2 // over uncaveated relationships only
)

// subjectGroup is the frontier of one type#relation, clean or not.
type subjectGroup struct {
	typ, rel string
	clean    bool
	ids      []string
}

type subjectGroupKey struct {
	typ, rel string
	clean    bool
}

// newSubjectWalk prepares a walk for req. The result starts exact when
// the permission is monotone and the subject relation is a relation (a
// subject set has itself; a permission is computed).
func newSubjectWalk(ev *evaluation, req LookupSubjectsRequest, primary bool) *subjectWalk {
	s := ev.schema
	reach, exact := monotoneFrom(s, req.Resource.Type, req.Permission)
	if req.SubjectRelation != "" && s.Definitions[req.SubjectType].Relations[req.SubjectRelation] == nil {
		exact = false
	}
	return &subjectWalk{ev: ev, req: req, primary: primary, reach: reach, c: candidates{exact: exact},
		seen: make(map[node]uint8), candSeen: make(map[string]bool), level: 1}
}

// visit records that object id of typ was reached at relation rel, over
// uncaveated relationships only when clean, and queues it for expansion
// unless it was reached so before.
func (w *subjectWalk) visit(typ, id, rel string, clean bool) {
	def := w.ev.schema.Definitions[typ]
	if def == nil || !def.Has(rel) {
		return
	}
	k := node{typ, id, rel}
	state := uint8(reached)
	if clean {
		state = reachedClean
	}
	if w.seen[k] >= state {
		return
	}
	w.seen[k] = state
	if w.c.exact && (id == graph.Wildcard || w.level > w.ev.eng.cfg.MaxDepth || !w.reach[[2]string{typ, rel}]) {
		w.c.exact = false
	}
	if typ == w.req.SubjectType && rel == w.req.SubjectRelation {
		w.add(id, clean)
	}
	if w.index == nil {
		w.index = make(map[subjectGroupKey]int)
	}
	gk := subjectGroupKey{typ, rel, clean}
	gi, ok := w.index[gk]
	if !ok {
		gi = len(w.frontier)
		w.index[gk] = gi
		w.frontier = append(w.frontier, subjectGroup{typ: typ, rel: rel, clean: clean})
	}
	w.frontier[gi].ids = append(w.frontier[gi].ids, id)
}

// add records a subject of the requested type: a candidate ID, or the
// wildcard.
func (w *subjectWalk) add(id string, clean bool) {
	c := &w.c
	if id == graph.Wildcard {
		if w.req.SubjectRelation == "" {
			c.wildcard = true
			c.wildcardClean = c.wildcardClean || clean
		}
		return
	}
	if !w.candSeen[id] {
		w.candSeen[id] = true
		c.ids = append(c.ids, id)
	}
	if clean {
		if c.clean == nil {
			c.clean = make(map[string]bool)
		}
		c.clean[id] = true
	}
}

// expand follows, ChunkSize objects at a time, what the group's relation
// or permission leads to.
func (w *subjectWalk) expand(g subjectGroup) error {
	def := w.ev.schema.Definitions[g.typ]
	chunk := w.ev.eng.cfg.ChunkSize
	for start := 0; start < len(g.ids); start += chunk {
		ids := g.ids[start:min(start+chunk, len(g.ids))]
		if p := def.Permissions[g.rel]; p != nil {
			if err := w.expandPermission(g, ids, p.Expr); err != nil {
				return err
			}
			continue
		}
		if err := w.expandRelation(g, ids, def.Relations[g.rel]); err != nil {
			return err
		}
	}
	return nil
}

// expandPermission visits what the leaves of a permission's expression
// (all of them, or the primary ones) lead to from ids: the same objects
// at a computed relation, and the objects an arrow's relationships name.
func (w *subjectWalk) expandPermission(g subjectGroup, ids []string, x schema.Expr) error {
	return walkExpr(x, w.primary, func(x schema.Expr) error {
		switch x := x.(type) {
		case *schema.RelationRef:
			for _, id := range ids {
				w.visit(g.typ, id, x.Name, g.clean)
			}
		case *schema.Arrow:
			return w.ev.query(storage.Filter{ResourceType: g.typ, ResourceIDs: ids, Relation: x.Tupleset}, func(r graph.Relationship) {
				w.visit(r.Subject.Object.Type, r.Subject.Object.ID, x.Target, g.clean && r.Caveat == nil)
			})
		}
		return nil
	})
}

// expandRelation reads relation r of ids: a plain subject of the requested
// type is a candidate, and a subject set is visited. A subject r does not
// allow refutes exactness (a check ignores it).
func (w *subjectWalk) expandRelation(g subjectGroup, ids []string, r *schema.Relation) error {
	return w.ev.query(storage.Filter{ResourceType: g.typ, ResourceIDs: ids, Relation: g.rel}, func(rel graph.Relationship) {
		sub := rel.Subject
		if w.c.exact && !allowedSubject(r, sub) {
			w.c.exact = false
		}
		clean := g.clean && rel.Caveat == nil
		if sub.Relation == "" {
			if sub.Object.Type == w.req.SubjectType && w.req.SubjectRelation == "" {
				w.add(sub.Object.ID, clean)
			}
			return
		}
		w.visit(sub.Object.Type, sub.Object.ID, sub.Relation, clean)
	})
}

// allowedSubject reports whether relation r admits subject s as a check
// counts it: any plain object (checks match plain subjects by type and
// ID), a wildcard only where the relation allows one of its type, and a
// subject set only where the relation lists it.
func allowedSubject(r *schema.Relation, s graph.SubjectRef) bool {
	if s.Relation == "" {
		return s.Object.ID != graph.Wildcard || allowsWildcard(r, s.Object.Type)
	}
	for _, a := range r.Allowed {
		if a.Type == s.Object.Type && a.Relation == s.Relation {
			return true
		}
	}
	return false
}

// walkExpr calls fn for every leaf of an expression, or, with primary
// set, for the leaves of intersections' first branches and exclusions'
// bases only.
func walkExpr(x schema.Expr, primary bool, fn func(schema.Expr) error) error {
	switch x := x.(type) {
	case *schema.Union:
		for _, c := range x.Children {
			if err := walkExpr(c, primary, fn); err != nil {
				return err
			}
		}
	case *schema.Intersection:
		for i, c := range x.Children {
			if primary && i > 0 {
				break
			}
			if err := walkExpr(c, primary, fn); err != nil {
				return err
			}
		}
	case *schema.Exclusion:
		if err := walkExpr(x.Base, primary, fn); err != nil {
			return err
		}
		if primary {
			return nil
		}
		return walkExpr(x.Subtracted, primary, fn)
	default:
		return fn(x)
	}
	return nil
}
