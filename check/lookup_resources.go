package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// Cursors are `lr1.<revision>.<results before>`: the walk is deterministic
// at a revision, so resuming replays it and skips what was already sent.
const cursorPrefix = "lr1."

// CursorRevision returns the revision a LookupResources cursor was issued
// at; a caller resuming must read at that exact revision.
func CursorRevision(cursor string) (storage.Revision, error) {
	rev, _, err := parseCursor(cursor)
	return rev, err
}

func parseCursor(c string) (storage.Revision, int, error) {
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	revText, nText, ok2 := strings.Cut(rest, ".")
	rev, err1 := strconv.ParseUint(revText, 10, 64)
	n, err2 := strconv.Atoi(nText)
	if !ok || !ok2 || err1 != nil || err2 != nil || n < 0 {
		return 0, 0, fmt.Errorf("%w: cursor %q is malformed", ErrInvalidRequest, c)
	}
	return storage.Revision(rev), n, nil
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
// batched Check. Memory grows with the objects reached, never with the
// relationships read; results stream as they are found.
func (e *Engine) LookupResources(ctx context.Context, snap Snapshot, req LookupResourcesRequest, yield func(ResourceResult) bool) error {
	if err := validate(snap.Schema, graph.ObjectRef{Type: req.ResourceType, ID: "x"}, req.Permission, req.Subject); err != nil {
		return fmt.Errorf("lookup resources: %w", err)
	}
	skip := 0
	if req.Cursor != "" {
		rev, n, err := parseCursor(req.Cursor)
		if err != nil {
			return fmt.Errorf("lookup resources: %w", err)
		}
		if rev != snap.Reader.Revision() {
			return fmt.Errorf("lookup resources: %w: cursor was issued at revision %d, request reads revision %d", ErrInvalidRequest, rev, snap.Reader.Revision())
		}
		skip = n
	}
	ev, err := e.newEvaluation(ctx, snap, req.Subject, req.Context, requestNow(req.Now))
	if err != nil {
		return err
	}
	w := &reverseWalk{ev: ev, target: schema.Node{Type: req.ResourceType, Relation: req.Permission},
		state: make(map[node]uint8), status: make(map[string]uint8)}
	w.paths = snap.Schema.Reachability().Lookup(w.target)
	sent := 0
	w.emit = func(id string, o outcome) bool {
		sent++
		if sent <= skip {
			return true
		}
		r := ResourceResult{ID: id, Permissionship: o.perm, Missing: o.missing,
			Cursor: cursorPrefix + strconv.FormatUint(uint64(snap.Reader.Revision()), 10) + "." + strconv.Itoa(sent)}
		if !yield(r) {
			return false
		}
		return req.Limit <= 0 || sent-skip < req.Limit
	}
	if err := w.run(); err != nil {
		return fmt.Errorf("lookup resources %s#%s@%s: %w", req.ResourceType, req.Permission, req.Subject.String(), err)
	}
	return nil
}

// reverseWalk is the state of one LookupResources.
type reverseWalk struct {
	ev     *evaluation
	target schema.Node
	paths  *schema.Paths
	emit   func(id string, o outcome) bool
	stop   bool
	// state of every object reached: 1 candidate, 2 definite grant.
	state map[node]uint8
	// status of target resources: 1 awaiting a check, 2 sent.
	status  map[string]uint8
	pending []string // candidates awaiting a check, in discovery order

	next      []walkGroup
	nextIndex map[schema.Node]int
	wildcard  bool // the start group: walk wildcard edges
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
	w.reach(start, s.Object.ID, 2)
	if s.Relation == "" && s.Object.ID != graph.Wildcard {
		// Wildcard relationships reach the subject too; they are walked
		// from the start node's wildcard edges only.
		w.wildcard = true
	}
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

// reach records that object id at node n was reached, definitely (2) or
// as a candidate (1).
func (w *reverseWalk) reach(n schema.Node, id string, st uint8) {
	k := node{n.Type, id, n.Relation}
	if w.state[k] >= st {
		return
	}
	w.state[k] = st
	if n == w.target {
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

// expand follows every edge out of a frontier group.
func (w *reverseWalk) expand(g walkGroup) error {
	for _, edge := range w.paths.Edges(g.node) {
		cond := edge.Conditional
		switch edge.Kind {
		case schema.EdgeComputed:
			for i, id := range g.ids {
				w.reach(edge.To, id, downgrade(g.state[i], cond))
			}
		case schema.EdgeWildcard:
			if !w.wildcard || g.node.Relation != "" {
				continue
			}
			ellipsis := ""
			f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: g.node.Type, IDs: []string{graph.Wildcard}, Relation: &ellipsis},
				ResourceType: edge.To.Type, Relation: edge.To.Relation}
			if err := w.ev.reverse(f, func(r graph.Relationship) {
				w.reach(edge.To, r.Resource.ID, downgrade(g.state[0], cond || r.Caveat != nil))
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
				if err := w.ev.reverse(f, func(r graph.Relationship) {
					i := at.find(r.Subject.Object.ID)
					if i < 0 {
						return
					}
					w.reach(edge.To, r.Resource.ID, downgrade(g.state[start+i], cond || r.Caveat != nil))
				}); err != nil {
					return err
				}
				if err := w.flush(false); err != nil || w.stop {
					return err
				}
			}
		}
	}
	return w.flush(false)
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
