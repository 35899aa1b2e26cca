package check

import (
	"cmp"
	"container/heap"
	"maps"
	"slices"
	"strconv"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// A LookupResources in resource ID order (cursor `lr2.<revision>.<id>`).
//
// When no node of the target type has an edge other than a computed one
// (the type is not on a path to itself through relationships), every
// resource found is found by reading, last, a relationship list into the
// type: the relationships of a direct, wildcard or arrow edge from one
// object the walk reached below the type (the subject, a group, a
// folder). The storage reverse index returns each such list in resource
// ID order. So a page:
//
//  1. walks up from the subject as the walk-order lookup does, but stops
//     below the target type, collecting the lists (closure);
//  2. opens every list strictly after the cursor's ID and merges them in
//     ID order, reading each a few rows at a time;
//  3. checks the candidates among the next IDs in batches and sends the
//     granted ones, until the page is full. The checks start from what
//     the walk of step 1 proved (see walkFacts): which objects below the
//     type the subject holds a relation on, and which it holds none on.
//
// A page reads the objects below the type the subject reaches, one query
// per list, and rows in proportion to the page (and the candidates a
// check refuses): its cost does not grow with its number. A cursor names
// an ID, not a position, so a relationship expiring between pages can
// neither repeat nor hide another result.

// maxMergeStreams bounds the lists a first page merges: beyond it one
// query per list costs more than reading them in batches, and the lookup
// answers in walk order instead. A variable for tests.
var maxMergeStreams = 512

// orderedTransfer decides whether a lookup of target can answer in ID
// order: it returns, for each node of the target type on a path to the
// target, the best state an object keeps from there to the target along
// computed edges (2: a grant stays a grant; 1: a check must confirm it),
// or nil when some such node has another kind of edge.
func orderedTransfer(paths *schema.Paths, target schema.Node) map[schema.Node]uint8 {
	nodes := append(paths.EntryPoints(), target)
	for _, n := range nodes {
		if n.Type != target.Type || n.Relation == "" {
			continue
		}
		for _, e := range paths.Edges(n) {
			if e.Kind != schema.EdgeComputed {
				return nil
			}
		}
	}
	transfer := map[schema.Node]uint8{target: 2}
	visiting := map[schema.Node]bool{}
	var best func(n schema.Node) uint8
	best = func(n schema.Node) uint8 {
		if v, ok := transfer[n]; ok || visiting[n] {
			return v
		}
		visiting[n] = true
		var v uint8
		for _, e := range paths.Edges(n) {
			v = max(v, downgrade(best(e.To), e.Conditional))
		}
		visiting[n] = false
		transfer[n] = v
		return v
	}
	for _, n := range nodes {
		if n.Type == target.Type && n.Relation != "" {
			best(n)
		}
	}
	return transfer
}

// lookupOrdered answers one page in ID order, after the ID after ("" from
// the start). done is false, with nothing sent, when a first page finds
// more than maxMergeStreams lists: the caller answers in walk order,
// reading the lists of the walk it returns (reverseWalk.drain).
func (e *Engine) lookupOrdered(ev *evaluation, paths *schema.Paths, target schema.Node, transfer map[schema.Node]uint8,
	req LookupResourcesRequest, after string, yield func(ResourceResult) bool) (done bool, walked *reverseWalk, err error) {
	w := newReverseWalk(ev, target, paths)
	w.final, w.sources, w.seeds = transfer, make(map[source]uint8), make(map[string]uint8)
	if err := w.run(); err != nil {
		return true, nil, err
	}
	streams := w.streams(after)
	if after == "" && len(streams) > maxMergeStreams {
		return false, w, nil
	}
	ev.facts = newWalkFacts(w, paths)
	m := &merge{ev: ev, resourceType: target.Type, fetch: firstFetch(req.Limit, len(streams))}
	for _, s := range streams {
		if err := m.open(s, after); err != nil {
			return true, nil, err
		}
	}
	return true, nil, e.sendOrdered(ev, target, req, m, yield)
}

// streams turns the closure's lists (and the target objects it reached
// directly) into ID-ordered streams.
func (w *reverseWalk) streams(after string) []*stream {
	var out []*stream
	if len(w.seeds) > 0 {
		seed := &stream{done: true}
		for _, id := range slices.Sorted(maps.Keys(w.seeds)) {
			if id > after && w.seeds[id] > 0 {
				seed.ids = append(seed.ids, id)
				seed.states = append(seed.states, w.seeds[id])
			}
		}
		out = append(out, seed)
	}
	// Several edges may lead to one list (`project->read` and
	// `project->write` both read a project's `project` relationships):
	// each list is opened once, with the best state any of them gives.
	lists := make(map[listKey]*stream, len(w.sources))
	add := func(subType, subID, subRel, relation string, base uint8) {
		k := listKey{graph.SubjectRef{Object: graph.ObjectRef{Type: subType, ID: subID}, Relation: subRel}, relation}
		if s := lists[k]; s != nil {
			s.base = max(s.base, base)
			return
		}
		s := &stream{subject: k.subject, relation: relation, base: base}
		lists[k] = s
		out = append(out, s)
	}
	def := w.ev.schema.Definitions[w.target.Type]
	for src, st := range w.sources {
		e := src.edge
		base := min(st, w.final[e.To])
		if base == 0 {
			continue
		}
		switch e.Kind {
		case schema.EdgeDirect, schema.EdgeWildcard:
			add(e.From.Type, src.id, e.From.Relation, e.To.Relation, base)
		case schema.EdgeArrow:
			// One list per subject relation the tupleset allows: the
			// index orders a subject's relationships by subject relation
			// before resource ID.
			for _, a := range def.Relations[e.Tupleset].Allowed {
				if a.Type == e.From.Type && !a.Wildcard {
					add(e.From.Type, src.id, a.Relation, e.Tupleset, base)
				}
			}
		}
	}
	return out
}

// listKey identifies a relationship list: `<type>:x#relation@subject`.
type listKey struct {
	subject  graph.SubjectRef
	relation string
}

// firstFetch is how many rows each of n streams reads first: enough for
// about two pages among them, at least a few.
func firstFetch(limit, n int) int {
	if limit <= 0 {
		limit = maxFetch
	}
	return min(max(2*limit/max(n, 1), 4), limit+1, maxFetch)
}

// maxFetch bounds the rows one read of a stream asks for; each refill of
// a stream doubles its read up to it.
const maxFetch = 1000

// stream is one ID-ordered list: the resource IDs still to merge, read
// from a relationship list (or given, for targets the walk reached).
type stream struct {
	subject  graph.SubjectRef
	relation string
	base     uint8 // state of a row without a caveat

	ids    []string // buffered, ascending
	states []uint8
	last   *graph.Relationship // last row read, where the next read resumes
	fetch  int
	done   bool // nothing is left to read
}

// merge merges streams in ID order; heads holds the streams with a
// buffered ID, ordered by it.
type merge struct {
	ev           *evaluation
	resourceType string
	fetch        int
	heads        streamHeap
}

// open reads the first rows of s after the ID after and adds it.
func (m *merge) open(s *stream, after string) error {
	if s.ids == nil && !s.done {
		s.fetch = m.fetch
		if after != "" {
			s.last = &graph.Relationship{Resource: graph.ObjectRef{Type: m.resourceType, ID: after}, Relation: s.relation, Subject: s.subject}
		}
		if err := m.read(s); err != nil {
			return err
		}
	}
	if len(s.ids) > 0 {
		heap.Push(&m.heads, s)
	}
	return nil
}

// read refills s (whose buffer is empty) with its next rows.
func (m *merge) read(s *stream) error {
	s.ids, s.states = s.ids[:0], s.states[:0]
	rel := s.subject.Relation
	f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: s.subject.Object.Type, IDs: []string{s.subject.Object.ID}, Relation: &rel},
		ResourceType: m.resourceType, Relation: s.relation}
	opts := m.ev.opts()
	opts.Limit, opts.After = s.fetch, s.last
	m.ev.eng.queries.Add(1)
	n := 0
	for r, err := range m.ev.reader.ReverseQueryRelationships(m.ev.ctx, f, opts) {
		if err != nil {
			return err
		}
		n++
		s.last = &r
		st := s.base
		if r.Caveat != nil {
			st = 1
		}
		s.ids = append(s.ids, r.Resource.ID)
		s.states = append(s.states, st)
	}
	s.done = n < s.fetch
	s.fetch = min(2*s.fetch, maxFetch)
	return nil
}

// next returns the smallest ID left and its best state over the streams
// that hold it; ok is false when every stream is spent.
func (m *merge) next() (id string, st uint8, ok bool, err error) {
	if len(m.heads) == 0 {
		return "", 0, false, nil
	}
	id = m.heads[0].ids[0]
	for len(m.heads) > 0 && m.heads[0].ids[0] == id {
		s := m.heads[0]
		st = max(st, s.states[0])
		s.ids, s.states = s.ids[1:], s.states[1:]
		if len(s.ids) == 0 && !s.done {
			if err := m.read(s); err != nil {
				return "", 0, false, err
			}
		}
		if len(s.ids) == 0 {
			heap.Pop(&m.heads)
		} else {
			heap.Fix(&m.heads, 0)
		}
	}
	return id, st, true, nil
}

// streamHeap orders streams by their first buffered ID.
type streamHeap []*stream

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return cmp.Less(h[i].ids[0], h[j].ids[0]) }
func (h streamHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)        { *h = append(*h, x.(*stream)) }
func (h *streamHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	*h = old[:len(old)-1]
	return s
}

// orderedCursor is the cursor that resumes an ID-ordered lookup at rev
// strictly after the resource id.
func orderedCursor(rev storage.Revision, id string) string {
	return orderedPrefix + strconv.FormatUint(uint64(rev), 10) + "." + id
}

// sendOrdered sends the merged IDs in order: definite grants as they are,
// candidates after a batched check, until req.Limit results were sent.
func (e *Engine) sendOrdered(ev *evaluation, target schema.Node, req LookupResourcesRequest, m *merge, yield func(ResourceResult) bool) error {
	sent := 0
	var ids, cands []string
	var states []uint8
	for req.Limit <= 0 || sent < req.Limit {
		if err := ev.ctx.Err(); err != nil {
			return err
		}
		// Gather what the page still needs (at most a chunk), so a page
		// reads and checks little beyond its end.
		want := e.cfg.ChunkSize
		if req.Limit > 0 {
			want = min(want, req.Limit-sent)
		}
		ids, states, cands = ids[:0], states[:0], cands[:0]
		for len(ids) < want {
			id, st, ok, err := m.next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			ids, states = append(ids, id), append(states, st)
			if st == 1 {
				cands = append(cands, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		var checked []outcome
		if len(cands) > 0 {
			var err error
			if checked, err = ev.checkBatch(target.Type, target.Relation, cands, 1); err != nil {
				return err
			}
		}
		for i, id := range ids {
			r := ResourceResult{ID: id, Permissionship: HasPermission, Cursor: orderedCursor(ev.rev, id)}
			if states[i] == 1 {
				o := checked[0]
				checked = checked[1:]
				if o.perm == NoPermission {
					continue
				}
				r.Permissionship, r.Missing = o.perm, o.missing
			}
			if !yield(r) {
				return nil
			}
			sent++
		}
	}
	return nil
}
