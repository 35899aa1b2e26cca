package expand

import (
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Oversize remembers how large the expansions of object#relations were,
// so that a tree reaching one known to be over the node limit is refused
// there, without reading the rest of it.
//
// Why that is exact: expanding an object#relation X on its own reads a
// set of object#relations, each once. A tree that reaches X expands every
// one of them too — inside X, or elsewhere in the tree before X reached
// it (it is then marked Seen inside X) — and each expansion adds the same
// nodes wherever it happens. So X's own nodes, less its Seen marks, are a
// lower bound of any tree's nodes that reaches X; when they are over the
// limit, so is the tree. (A tree over both bounds may then fail as too
// large where the walk would have reached the depth bound first.)
//
// What is learned: when a count fails as too large, the outermost
// object#relation of another object than the requested one on the path
// to the node that crossed the limit — the largest shared part of the
// tree, such as a tier's clearance every resource of the tier reaches —
// is counted on its own, once, and the result (over, or its exact size)
// remembered. The inner object#relations on that path are contained in
// it, so they are no larger.
//
// Where it is used: wherever a count reaches an object#relation, and
// before a count starts, for the parts the tree is sure to reach within
// a step (see refuseAhead).
//
// How long a size holds: it is of the schema, the revision and the
// instant it was counted at. It serves another revision when none of the
// relations its count read changed in between (Options.Changes), and
// instants until the first relationship it counted expires. Shallow
// trees, which expand differently, neither use nor feed it.
//
// An Oversize is safe for concurrent use; its memory is bounded by its
// entry count.
type Oversize struct {
	sizes *lru.Cache[objectRelation, sizeFact]
	mu    sync.Mutex
	// schema is the schema the sizes are of: learning under another
	// forgets them, so the memory holds one schema alive, not one per
	// schema ever written.
	schema *schema.Schema
	// counting are the object#relations being counted on their own, so
	// that concurrent refusals through one of them count it once.
	counting map[objectRelation]bool
}

// sizeFact is the size of one object#relation's expansion on its own.
type sizeFact struct {
	s         *schema.Schema
	rev       storage.Revision
	at, until int64 // UnixNano; the size holds for now ∈ [at, until)
	// nodes of the expansion, less its Seen marks: exact when whole, a
	// lower bound above limit otherwise.
	nodes int
	whole bool
	// reads are the relations (type, relation) the count read rows of.
	reads [][2]string
}

// DefaultOversizeEntries is how many sizes NewOversize(0) remembers.
const DefaultOversizeEntries = 4096

// NewOversize returns an empty memory of at most entries sizes
// (DefaultOversizeEntries when entries ≤ 0).
func NewOversize(entries int) *Oversize {
	if entries <= 0 {
		entries = DefaultOversizeEntries
	}
	sizes, _ := lru.New[objectRelation, sizeFact](entries) // only fails for a non-positive size
	return &Oversize{sizes: sizes, counting: make(map[objectRelation]bool)}
}

// Changes tells whether relationships of a relation changed between two
// revisions; it answers false when it cannot tell (see
// relchanges.Tracker.Unchanged).
type Changes interface {
	Unchanged(from, to storage.Revision, resourceType, relation string) bool
}

// size returns the remembered size of k that holds for x's schema,
// revision and instant.
func (m *Oversize) size(x *expander, k objectRelation) (sizeFact, bool) {
	// A count asks about every object#relation it expands: Peek shares
	// the lock between concurrent counts; only a refusal marks its size
	// used (see over).
	f, ok := m.sizes.Peek(k)
	if !ok || f.s != x.s {
		return sizeFact{}, false
	}
	if now := x.opts.Now.UnixNano(); now < f.at || now >= f.until {
		return sizeFact{}, false
	}
	if rev := x.r.Revision(); f.rev != rev {
		if x.opts.Changes == nil {
			return sizeFact{}, false
		}
		for _, d := range f.reads {
			if !x.opts.Changes.Unchanged(f.rev, rev, d[0], d[1]) {
				return sizeFact{}, false
			}
		}
	}
	return f, true
}

// over reports whether k is known to expand to more than x's limit, and
// marks its size used when it is.
func (m *Oversize) over(x *expander, k objectRelation) (sizeFact, bool) {
	f, ok := m.size(x, k)
	if !ok || f.nodes <= x.opts.MaxNodes {
		return sizeFact{}, false
	}
	m.sizes.Get(k)
	return f, true
}

// learn counts on its own the object#relation of a refused count's path
// that its memory gains most from (see Oversize) and remembers its size.
// counter is the expander whose count failed as too large.
func (m *Oversize) learn(counter *expander, resource graph.ObjectRef) {
	i := slices.IndexFunc(counter.crossed, func(k objectRelation) bool { return k.object != resource })
	if i < 0 {
		return
	}
	k := counter.crossed[i]
	if f, ok := m.size(counter, k); ok && (f.whole || f.nodes > counter.opts.MaxNodes) {
		return // known already
	}
	m.mu.Lock()
	if m.counting[k] {
		m.mu.Unlock()
		return
	}
	if m.schema != counter.s {
		m.sizes.Purge()
		m.schema = counter.s
	}
	m.counting[k] = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.counting, k)
		m.mu.Unlock()
	}()

	x := newExpander(counter.ctx, counter.s, counter.r, counter.opts, true)
	defer x.release()
	x.oversize, x.alone = m, true
	_, err := x.object(k.object, k.relation, 1)
	f := sizeFact{s: x.s, rev: x.r.Revision(), at: x.opts.Now.UnixNano(), until: x.until, reads: x.reads,
		nodes: x.nodes - x.seenMarks}
	switch {
	case err == nil:
		f.whole = true
	case x.known != nil: // it reached an object#relation known to be over
		f.nodes = max(f.nodes, x.known.nodes)
		f.until = min(f.until, x.known.until)
		for _, d := range x.known.reads {
			f.reads = addRead(f.reads, d[0], d[1])
		}
	case errors.Is(err, ErrTooLarge):
	default:
		return // too deep, or the request ended: nothing learned
	}
	m.mu.Lock()
	if m.schema == f.s { // unless a count under a newer schema came between
		m.sizes.Add(k, f)
	}
	m.mu.Unlock()
}

// addRead adds (typ, rel) to reads unless it is there.
func addRead(reads [][2]string, typ, rel string) [][2]string {
	if d := [2]string{typ, rel}; !slices.Contains(reads, d) {
		return append(reads, d)
	}
	return reads
}

// noExpiry is the until of a count that read no expiring relationship.
const noExpiry = math.MaxInt64

// expiresAt returns the UnixNano of t, or noExpiry for nil.
func expiresAt(t *time.Time) int64 {
	if t == nil {
		return noExpiry
	}
	return t.UnixNano()
}

// lookAheadRows bounds the tupleset rows refuseAhead reads of one arrow:
// an arrow to one tier, project or parent is what it is for.
const lookAheadRows = 16

// refuseAhead looks, before a count walks o#rel, for an object#relation
// known to be over the limit that the tree is sure to reach within a
// step: o#rel itself, the relations and permissions of o its
// permissions name, and the objects their arrows reach through a
// tupleset of at most lookAheadRows rows. Finding one, it sets x.known
// and returns ErrTooLarge: the tree reaches it wherever the walk would
// (every branch of an expression is expanded), so the answer is the
// walk's, reached without counting the branches before it — a
// document's viewers before its tier's clearance. It reads only the
// tuplesets, which the walk reads too (a cached reader then serves them
// twice), and records nothing for the build.
func (x *expander) refuseAhead(o graph.ObjectRef, rel string) error {
	var visited []string // o's permissions looked into
	var look func(rel string) (sizeFact, bool, error)
	var lookExpr func(e schema.Expr) (sizeFact, bool, error)
	look = func(rel string) (sizeFact, bool, error) {
		if f, ok := x.oversize.over(x, objectRelation{o, rel}); ok {
			return f, true, nil
		}
		p := x.s.Definitions[o.Type].Permissions[rel]
		if p == nil || slices.Contains(visited, rel) {
			return sizeFact{}, false, nil
		}
		visited = append(visited, rel)
		return lookExpr(p.Expr)
	}
	lookExpr = func(e schema.Expr) (sizeFact, bool, error) {
		var children []schema.Expr
		switch e := e.(type) {
		case *schema.RelationRef:
			return look(e.Name)
		case *schema.Union:
			children = e.Children
		case *schema.Intersection:
			children = e.Children
		case *schema.Exclusion:
			children = []schema.Expr{e.Base, e.Subtracted}
		case *schema.Arrow:
			return x.lookThrough(o, e)
		}
		for _, c := range children {
			if f, ok, err := lookExpr(c); ok || err != nil {
				return f, ok, err
			}
		}
		return sizeFact{}, false, nil
	}
	f, ok, err := look(rel)
	if err != nil || !ok {
		return err
	}
	x.known = &f
	return x.tooLarge()
}

// lookThrough reads arrow a's tupleset on o, unless it holds more than
// lookAheadRows rows, and reports a target the arrow reaches that is
// known to be over the limit.
func (x *expander) lookThrough(o graph.ObjectRef, a *schema.Arrow) (sizeFact, bool, error) {
	f := storage.Filter{ResourceType: o.Type, ResourceIDs: []string{o.ID}, Relation: a.Tupleset}
	rows, whole, err := x.readUpTo(f, storage.QueryOptions{Now: x.opts.Now}, lookAheadRows)
	if err != nil || !whole {
		return sizeFact{}, false, err
	}
	for _, r := range rows {
		if td := x.s.Definitions[r.Subject.Object.Type]; td == nil || !td.Has(a.Target) {
			continue
		}
		if f, ok := x.oversize.over(x, objectRelation{r.Subject.Object, a.Target}); ok {
			return f, true, nil
		}
	}
	return sizeFact{}, false, nil
}
