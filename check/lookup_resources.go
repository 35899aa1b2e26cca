package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// LookupResourcesRequest asks which resources of ResourceType Subject has
// Permission on.
type LookupResourcesRequest struct {
	ResourceType string
	Permission   string
	Subject      graph.SubjectRef
	Context      map[string]any
	Now          time.Time
	// Limit caps the results of this call (0: no limit).
	Limit int
	// Cursor resumes after the result that carried it ("" starts over).
	Cursor string
}

// ResourceResult is one resource found by LookupResources.
type ResourceResult struct {
	ID             string
	Permissionship Permissionship // HasPermission or Conditional
	Missing        []string
	// Cursor resumes the lookup after this result.
	Cursor string
}

// ErrStaleCursor: a replay cursor no longer matches the results at its
// revision, because relationships it depended on expired since it was
// issued. The lookup must start over.
var ErrStaleCursor = errors.New("the results changed since the cursor was issued (a relationship expired)")

// A lookup answers in one of two orders, and its cursors say which:
//
//   - `lr2.<revision>.<last id>`: resource ID order (bytewise). A page
//     resumes strictly after the last ID sent, so it costs what the page
//     needs, whatever its number (see lookupOrdered).
//   - `lr1.<revision>.<sent>[.<digest>]`: the order of the reverse walk.
//     Resuming replays the walk and skips what was sent; digest (FNV-1a of
//     the IDs sent, hex) detects a walk that changed in between.
//
// Both pin the revision; the caller must read at CursorRevision.
const (
	orderedPrefix = "lr2."
	replayPrefix  = "lr1."
)

// lookupCursor is a parsed cursor.
type lookupCursor struct {
	rev     storage.Revision
	ordered bool
	after   string // ordered: the last ID sent
	sent    int    // replay: results sent
	digest  uint64 // replay: digest of the IDs sent
	checked bool   // replay: digest is present
}

// CursorRevision returns the revision a LookupResources cursor was issued
// at; a caller resuming must read at that exact revision.
func CursorRevision(cursor string) (storage.Revision, error) {
	c, err := parseCursor(cursor)
	return c.rev, err
}

func parseCursor(c string) (lookupCursor, error) {
	bad := fmt.Errorf("%w: cursor %q is malformed", ErrInvalidRequest, c)
	var out lookupCursor
	rest, ok := strings.CutPrefix(c, orderedPrefix)
	out.ordered = ok
	if !ok {
		if rest, ok = strings.CutPrefix(c, replayPrefix); !ok {
			return out, bad
		}
	}
	revText, pos, ok := strings.Cut(rest, ".")
	rev, err := strconv.ParseUint(revText, 10, 64)
	if !ok || err != nil {
		return out, bad
	}
	out.rev = storage.Revision(rev)
	if out.ordered {
		if graph.ValidateObjectID(pos, false) != nil {
			return out, bad
		}
		out.after = pos
		return out, nil
	}
	nText, sumText, hasSum := strings.Cut(pos, ".")
	if out.sent, err = strconv.Atoi(nText); err != nil || out.sent < 0 {
		return out, bad
	}
	if hasSum {
		if out.digest, err = strconv.ParseUint(sumText, 16, 64); err != nil {
			return out, bad
		}
		out.checked = true
	}
	return out, nil
}

// LookupResources streams the resources of req.ResourceType on which
// req.Subject has req.Permission, each once, until yield returns false or
// req.Limit results were sent.
//
// It walks the reverse index upward from the subject along the schema's
// reachability graph. A resource reached only through unions and
// any-arrows over uncaveated relationships is a grant without further
// work; one reached through an intersection, an exclusion's base, an
// all-arrow or a caveated relationship is a candidate, confirmed by a
// batched Check.
//
// When the target type is not on a path to itself (resources are reached
// from groups, folders and the subject, not from other resources of the
// type), results come in ID order and a cursor resumes after an ID (see
// lookupOrdered). Otherwise, or when the subject reaches more than
// maxMergeStreams relationship lists of the target type, results stream
// in walk order as they are found and a cursor replays the walk.
func (e *Engine) LookupResources(ctx context.Context, snap Snapshot, req LookupResourcesRequest, yield func(ResourceResult) bool) error {
	if err := validate(snap.Schema, graph.ObjectRef{Type: req.ResourceType, ID: "x"}, req.Permission, req.Subject); err != nil {
		return fmt.Errorf("lookup resources: %w", err)
	}
	var cur lookupCursor
	if req.Cursor != "" {
		var err error
		if cur, err = parseCursor(req.Cursor); err != nil {
			return fmt.Errorf("lookup resources: %w", err)
		}
		if cur.rev != snap.Reader.Revision() {
			return fmt.Errorf("lookup resources: %w: cursor was issued at revision %d, request reads revision %d", ErrInvalidRequest, cur.rev, snap.Reader.Revision())
		}
	}
	ev, err := e.newEvaluation(ctx, snap, req.Subject, req.Context, requestNow(req.Now))
	if err != nil {
		return err
	}
	defer e.release(ev)
	target := schema.Node{Type: req.ResourceType, Relation: req.Permission}
	paths := snap.Schema.Reachability().Lookup(target)
	transfer := orderedTransfer(paths, target)
	var walked *reverseWalk
	switch {
	case transfer != nil && (req.Cursor == "" || cur.ordered):
		done, w, err := e.lookupOrdered(ev, paths, target, transfer, req, cur.after, yield)
		if done || err != nil {
			return wrapLookup(req, err)
		}
		walked = w // too many lists to merge (only on a first page): read them in walk order
	case cur.ordered:
		return fmt.Errorf("lookup resources: %w: cursor %q does not belong to this lookup", ErrInvalidRequest, req.Cursor)
	}
	return wrapLookup(req, e.lookupReplay(ev, paths, target, transfer, walked, req, cur, yield))
}

func wrapLookup(req LookupResourcesRequest, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("lookup resources %s#%s@%s: %w", req.ResourceType, req.Permission, req.Subject.String(), err)
}

// lookupReplay answers in walk order, skipping the results a replay
// cursor says were sent. With transfer (see orderedTransfer), the walk
// stops below the target type, as an ordered page's does, and then reads
// the lists it collected in a fixed order (drain); walked is such a walk
// already run by a first page that found too many lists to merge.
func (e *Engine) lookupReplay(ev *evaluation, paths *schema.Paths, target schema.Node, transfer map[schema.Node]uint8, walked *reverseWalk,
	req LookupResourcesRequest, cur lookupCursor, yield func(ResourceResult) bool) error {
	rev := strconv.FormatUint(uint64(ev.rev), 10)
	digest := fnv.New64a()
	sent := 0
	w := walked
	if w == nil {
		w = newReverseWalk(ev, target, paths)
	}
	w.emit = func(id string, o outcome) bool {
		sent++
		digest.Write([]byte(id))
		digest.Write([]byte{0})
		if sent <= cur.sent {
			if sent == cur.sent && cur.checked && digest.Sum64() != cur.digest {
				w.err = ErrStaleCursor
				return false
			}
			return true
		}
		r := ResourceResult{ID: id, Permissionship: o.perm, Missing: o.missing,
			Cursor: replayPrefix + rev + "." + strconv.Itoa(sent) + "." + strconv.FormatUint(digest.Sum64(), 16)}
		if !yield(r) {
			return false
		}
		return req.Limit <= 0 || sent-cur.sent < req.Limit
	}
	var err error
	switch {
	case walked != nil:
		err = w.drain()
	case transfer != nil:
		w.final, w.sources, w.seeds = transfer, make(map[source]uint8), make(map[string]uint8)
		if err = w.run(); err == nil {
			err = w.drain()
		}
	default:
		err = w.run()
	}
	if err != nil {
		return err
	}
	if w.err == nil && cur.checked && sent < cur.sent {
		return ErrStaleCursor
	}
	return w.err
}

// reverseWalk is the state of one reverse walk.
type reverseWalk struct {
	ev     *evaluation
	target schema.Node
	paths  *schema.Paths
	emit   func(id string, o outcome) bool
	stop   bool
	err    error // set by emit to stop the walk with an error
	// state of every object reached: 1 candidate, 2 definite grant.
	state map[node]uint8
	// until holds, for a definite grant, the earliest expiration among
	// the relationships of the path that first proved it, when one
	// expires (absent: it never does). A later path may hold longer; the
	// first one's bound is the safe one (see walkFacts).
	until map[node]int64
	// status of target resources: 1 awaiting a check, 2 sent.
	status  map[string]uint8
	pending []string // candidates awaiting a check, in discovery order

	next      []walkGroup
	nextIndex map[schema.Node]int
	wildcard  bool // the start group: walk wildcard edges

	// final, when set, makes the walk stop below the target type (see
	// closure): it maps each node of the target type to the best state
	// an object keeps from there to the target.
	final   map[schema.Node]uint8
	sources map[source]uint8 // closure: lists of the target type to read
	seeds   map[string]uint8 // closure: target objects reached without a list

	// limit, when set, stops the walk past that many objects reached. A
	// walk without emit only collects (see walkFacts): it sends and
	// checks nothing.
	limit int
}

// source is a relationship list leading into the target type: the
// relationships of edge's kind from object id at edge.From.
type source struct {
	edge schema.Edge
	id   string
}

func newReverseWalk(ev *evaluation, target schema.Node, paths *schema.Paths) *reverseWalk {
	return &reverseWalk{ev: ev, target: target, paths: paths, state: make(map[node]uint8), status: make(map[string]uint8)}
}

// walkGroup is the frontier of one schema node.
type walkGroup struct {
	node  schema.Node
	ids   []string
	state []uint8
}

func (w *reverseWalk) run() error {
	s := w.ev.subject
	start := schema.Node{Type: s.Object.Type, Relation: s.Relation}
	w.reach(start, s.Object.ID, 2, dispatch.Never)
	if s.Relation == "" {
		// Wildcard relationships reach the subject too (the wildcard
		// subject `user:*` itself among them, where the relation allows
		// only `user:*`); they are walked from the start node's wildcard
		// edges only.
		w.wildcard = true
	}
	return w.walk()
}

// walk expands the frontier until nothing is left, then checks the
// candidates still pending.
func (w *reverseWalk) walk() error {
	for len(w.next) > 0 && !w.stop {
		cur := w.next
		w.next, w.nextIndex = nil, nil
		for _, g := range cur {
			if err := w.expand(g); err != nil {
				return err
			}
			if w.stop {
				return nil
			}
		}
		w.wildcard = false
	}
	return w.flush(true)
}

// inFinal reports whether n is a node of the target type in closure mode.
func (w *reverseWalk) inFinal(n schema.Node) bool {
	return w.final != nil && n.Type == w.target.Type && n.Relation != ""
}

// reach records that object id at node n was reached, definitely (2) or
// as a candidate (1), along a path whose relationships hold until until
// (UnixNano; dispatch.Never when none expires).
func (w *reverseWalk) reach(n schema.Node, id string, st uint8, until int64) {
	if w.stop {
		return
	}
	if w.inFinal(n) {
		if st = min(st, w.final[n]); st > w.seeds[id] {
			w.seeds[id] = st
		}
		return
	}
	k := node{n.Type, id, n.Relation}
	if w.state[k] >= st {
		return
	}
	w.state[k] = st
	if st == 2 && until != dispatch.Never {
		if w.until == nil {
			w.until = make(map[node]int64)
		}
		w.until[k] = until
	}
	if w.limit > 0 && len(w.state) > w.limit {
		w.stop = true
		return
	}
	if n == w.target && w.emit != nil {
		switch {
		case w.status[id] == 2:
		case st == 2:
			w.status[id] = 2
			if !w.emit(id, outcome{perm: HasPermission}) {
				w.stop = true
			}
		case w.status[id] == 0:
			w.status[id] = 1
			w.pending = append(w.pending, id)
		}
	}
	if w.nextIndex == nil {
		w.nextIndex = make(map[schema.Node]int)
	}
	gi, ok := w.nextIndex[n]
	if !ok {
		gi = len(w.next)
		w.nextIndex[n] = gi
		w.next = append(w.next, walkGroup{node: n})
	}
	w.next[gi].ids = append(w.next[gi].ids, id)
	w.next[gi].state = append(w.next[gi].state, st)
}

// record notes, in closure mode, that the relationships of edge from id
// (reached in state st) lead into the target type.
func (w *reverseWalk) record(edge schema.Edge, id string, st uint8) {
	k := source{edge, id}
	if st = downgrade(st, edge.Conditional); st > w.sources[k] {
		w.sources[k] = st
	}
}

// drain ends a walk that stopped below the target type (final): the
// target objects it reached directly, then the lists into the target type
// it collected, read by edge and ID in a fixed order, ChunkSize objects
// per query, and the walk on from what they reach. It reads what a walk
// without final would have read last, once.
func (w *reverseWalk) drain() error {
	seeds, sources := w.seeds, w.sources
	w.final, w.sources, w.seeds = nil, nil, nil
	for _, id := range slices.Sorted(maps.Keys(seeds)) {
		if st := seeds[id]; st > 0 {
			w.reach(w.target, id, st, dispatch.Never) // a replay sends grants unbounded
		}
	}
	groups := make(map[schema.Edge]*walkGroup)
	for src, st := range sources {
		g := groups[src.edge]
		if g == nil {
			g = &walkGroup{node: src.edge.From}
			groups[src.edge] = g
		}
		g.ids, g.state = append(g.ids, src.id), append(g.state, st)
	}
	edges := slices.SortedFunc(maps.Keys(groups), compareEdges)
	for _, edge := range edges {
		g := groups[edge]
		sortGroup(g)
		w.wildcard = edge.Kind == schema.EdgeWildcard
		if err := w.expandEdge(*g, edge); err != nil || w.stop {
			return err
		}
	}
	w.wildcard = false
	if err := w.flush(false); err != nil || w.stop {
		return err
	}
	return w.walk()
}

// compareEdges orders edges by every field, for a walk order that does
// not depend on map iteration.
func compareEdges(a, b schema.Edge) int {
	return cmp.Or(cmp.Compare(a.From.Type, b.From.Type), cmp.Compare(a.From.Relation, b.From.Relation),
		cmp.Compare(a.To.Type, b.To.Type), cmp.Compare(a.To.Relation, b.To.Relation),
		cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Tupleset, b.Tupleset), compareBool(a.Conditional, b.Conditional))
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// sortGroup orders a group's IDs (with their states) ascending.
func sortGroup(g *walkGroup) {
	order := make([]int, len(g.ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(g.ids[a], g.ids[b]) })
	ids, states := make([]string, len(order)), make([]uint8, len(order))
	for i, j := range order {
		ids[i], states[i] = g.ids[j], g.state[j]
	}
	g.ids, g.state = ids, states
}

// expand follows every edge out of a frontier group.
func (w *reverseWalk) expand(g walkGroup) error {
	for _, edge := range w.paths.Edges(g.node) {
		if err := w.expandEdge(g, edge); err != nil || w.stop {
			return err
		}
	}
	return w.flush(false)
}

// expandEdge follows one edge out of a frontier group.
func (w *reverseWalk) expandEdge(g walkGroup, edge schema.Edge) error {
	cond := edge.Conditional
	if edge.Kind != schema.EdgeComputed && w.inFinal(edge.To) {
		if edge.Kind == schema.EdgeWildcard {
			if w.wildcard && g.node.Relation == "" {
				w.record(edge, graph.Wildcard, g.state[0])
			}
			return nil
		}
		for i, id := range g.ids {
			w.record(edge, id, g.state[i])
		}
		return nil
	}
	switch edge.Kind {
	case schema.EdgeComputed:
		for i, id := range g.ids {
			w.reach(edge.To, id, downgrade(g.state[i], cond), w.untilOf(g.node, id))
		}
	case schema.EdgeWildcard:
		if !w.wildcard || g.node.Relation != "" {
			return nil
		}
		ellipsis := ""
		f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: g.node.Type, IDs: []string{graph.Wildcard}, Relation: &ellipsis},
			ResourceType: edge.To.Type, Relation: edge.To.Relation}
		if err := w.reverse(f, func(r graph.Relationship) {
			w.reach(edge.To, r.Resource.ID, downgrade(g.state[0], cond || r.Caveat != nil), pathUntil(w.untilOf(g.node, g.ids[0]), &r))
		}); err != nil {
			return err
		}
	case schema.EdgeDirect, schema.EdgeArrow:
		chunk := w.ev.eng.cfg.ChunkSize
		for start := 0; start < len(g.ids); start += chunk {
			end := min(start+chunk, len(g.ids))
			ids := g.ids[start:end]
			at := newIndex(ids)
			f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: g.node.Type, IDs: ids},
				ResourceType: edge.To.Type, Relation: edge.To.Relation}
			if edge.Kind == schema.EdgeArrow {
				f.Relation = edge.Tupleset
			} else {
				rel := g.node.Relation
				f.Subject.Relation = &rel
			}
			if err := w.reverse(f, func(r graph.Relationship) {
				i := at.find(r.Subject.Object.ID)
				if i < 0 {
					return
				}
				w.reach(edge.To, r.Resource.ID, downgrade(g.state[start+i], cond || r.Caveat != nil), pathUntil(w.untilOf(g.node, ids[i]), &r))
			}); err != nil {
				return err
			}
			if err := w.flush(false); err != nil || w.stop {
				return err
			}
		}
	}
	return nil
}

// untilOf is how long the grant of object id at node n holds (see
// reverseWalk.until); meaningless for a candidate.
func (w *reverseWalk) untilOf(n schema.Node, id string) int64 {
	if u, ok := w.until[node{n.Type, id, n.Relation}]; ok {
		return u
	}
	return dispatch.Never
}

// pathUntil extends a path holding until until by relationship r.
func pathUntil(until int64, r *graph.Relationship) int64 {
	if r.Expiration != nil {
		return min(until, r.Expiration.UnixNano())
	}
	return until
}

// reverse reads relationships by subject, calling fn for each, until the
// walk stops: a full page reads no further.
func (w *reverseWalk) reverse(f storage.ReverseFilter, fn func(graph.Relationship)) error {
	w.ev.eng.queries.Add(1)
	for r, err := range w.ev.reader.ReverseQueryRelationships(w.ev.ctx, f, w.ev.opts()) {
		if err != nil {
			return fmt.Errorf("reverse query %s#%s: %w", f.ResourceType, f.Relation, err)
		}
		if fn(r); w.stop {
			return nil
		}
	}
	return nil
}

func downgrade(st uint8, conditional bool) uint8 {
	if conditional {
		return 1
	}
	return st
}

// flush checks the pending candidates once a chunk has gathered (or all,
// at the end) and sends those granted.
func (w *reverseWalk) flush(all bool) error {
	chunk := w.ev.eng.cfg.ChunkSize
	for len(w.pending) >= chunk || (all && len(w.pending) > 0) {
		if w.stop {
			return nil
		}
		n := min(chunk, len(w.pending))
		var ids []string
		for _, id := range w.pending[:n] {
			if w.status[id] == 1 {
				ids = append(ids, id)
			}
		}
		w.pending = w.pending[n:]
		if len(ids) == 0 {
			continue
		}
		out, err := w.ev.checkBatch(w.target.Type, w.target.Relation, ids, 1)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if w.status[id] == 2 || out[i].perm == NoPermission {
				continue
			}
			w.status[id] = 2
			if !w.emit(id, out[i]) {
				w.stop = true
				return nil
			}
		}
	}
	return nil
}
