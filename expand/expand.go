package expand

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Errors callers branch on.
var (
	// ErrMaxDepth: the tree is deeper than Options.MaxDepth.
	ErrMaxDepth = errors.New("max depth exceeded")
	// ErrUnknown: the resource type or the relation is not in the schema.
	ErrUnknown = errors.New("not defined in the schema")
	// ErrTooLarge: the tree has more than Options.MaxNodes nodes.
	ErrTooLarge = errors.New("tree too large")
)

// DefaultMaxNodes is the node limit of a tree when Options.MaxNodes is 0:
// a tree that size is already more than a person reads, and its reply
// stays in the megabytes.
const DefaultMaxNodes = 50000

// Op is the kind of a tree node.
type Op int

const (
	// OpRelation: the relationships of Object#Relation; children are subject leaves.
	OpRelation Op = iota
	// OpPermission: Object#Relation is a permission; its one child is the expression.
	OpPermission
	OpUnion
	OpIntersection
	// OpExclusion: the first child minus the second.
	OpExclusion
	// OpArrow: Arrow walked from Object; one child per related object.
	OpArrow
	OpNil
	// OpSubject: a subject leaf; a subject set's child expands it.
	OpSubject
)

// Node is one node of a userset tree.
type Node struct {
	Op       Op
	Object   graph.ObjectRef
	Relation string
	// Arrow is the arrow text of an OpArrow node ("parent->view").
	Arrow string
	// All marks an OpArrow node that walks .all(): every object it
	// reaches must grant (an intersection), not any one (a union).
	All bool
	// Subject, Caveat and Expiration describe an OpSubject leaf and the
	// relationship that put it there (for OpArrow children: the tupleset
	// relationship).
	Subject    graph.SubjectRef
	Caveat     string
	Expiration *time.Time
	Children   []*Node
	// Seen marks an object#relation expanded elsewhere in the tree (or
	// being expanded: a cycle); it is not expanded again.
	Seen bool
}

// Options bound an expansion.
type Options struct {
	// MaxDepth bounds nesting (default 50).
	MaxDepth int
	// MaxNodes bounds the nodes of the tree, subject leaves included
	// (default DefaultMaxNodes). Expansion stops, reading no further, as
	// soon as the tree would exceed it.
	MaxNodes int
	// Now is the instant expirations are judged at (zero: time.Now()).
	Now time.Time
	// Shallow leaves the subject sets a relation's relationships name
	// unexpanded: a client expands them with further calls, as SpiceDB's
	// ExpandPermissionTree does. A shallow tree expands an object#relation
	// again wherever it reaches it, so each subtree is whole; Seen then
	// marks only a cycle (an object#relation inside its own expansion).
	Shallow bool
	// Oversize, when set, remembers the object#relations whose expansion
	// alone is over MaxNodes, and a tree reaching one is refused there
	// (see Oversize). Changes lets a size counted at one revision serve
	// others across writes to relations it did not read.
	Oversize *Oversize
	Changes  Changes
}

// Expand builds the tree of perm (a relation or permission) on resource.
func Expand(ctx context.Context, s *schema.Schema, r storage.Reader, resource graph.ObjectRef, perm string, opts Options) (*Node, error) {
	def := s.Definitions[resource.Type]
	if def == nil || !def.Has(perm) {
		return nil, fmt.Errorf("expand %s#%s: %w", resource, perm, ErrUnknown)
	}
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 50
	}
	if opts.MaxNodes <= 0 {
		opts.MaxNodes = DefaultMaxNodes
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	// The tree is counted before it is built: one over MaxNodes then fails
	// having allocated nothing, and one within it is built in a single
	// allocation. The build replays the results the count read, so each
	// relation is read once.
	counter := newExpander(ctx, s, r, opts, true)
	if !opts.Shallow {
		counter.oversize = opts.Oversize
	}
	var err error
	if counter.oversize != nil {
		err = counter.refuseAhead(resource, perm)
	}
	if err == nil {
		_, err = counter.object(resource, perm, 1)
	}
	if counter.oversize != nil && counter.known == nil && errors.Is(err, ErrTooLarge) {
		counter.oversize.learn(counter, resource)
	}
	counter.release()
	if err != nil {
		return nil, fmt.Errorf("expand %s#%s: %w", resource, perm, err)
	}
	builder := newExpander(ctx, s, r, opts, false)
	defer builder.release()
	builder.arena = make([]Node, counter.nodes)
	builder.kids = make([]*Node, counter.nodes) // every node but the root is a child
	builder.replay, builder.replaying = counter.read, true
	n, err := builder.object(resource, perm, 1)
	if err != nil {
		return nil, fmt.Errorf("expand %s#%s: %w", resource, perm, err)
	}
	return n, nil
}

// newExpander returns an expander that builds a tree or, counting, only
// walks it.
func newExpander(ctx context.Context, s *schema.Schema, r storage.Reader, opts Options, counting bool) *expander {
	seen, _ := seenMaps.Get().(map[objectRelation]bool)
	if seen == nil {
		seen = make(map[objectRelation]bool)
	}
	return &expander{ctx: ctx, s: s, r: r, opts: opts, counting: counting, seen: seen, until: noExpiry}
}

// seenMaps recycles expanders' seen sets: a tree reaches thousands of
// object#relations, and growing a set to that size again for every tree
// cost more than the lookups.
var seenMaps sync.Pool

// release returns x's seen set for reuse.
func (x *expander) release() {
	clear(x.seen)
	seenMaps.Put(x.seen)
	x.seen = nil
}

type expander struct {
	ctx  context.Context
	s    *schema.Schema
	r    storage.Reader
	opts Options
	seen map[objectRelation]bool // object#relation already expanded
	// prefetched holds the rows prefetchTargets read of object#relations
	// the count is about to expand; their reads take them from here
	// instead of looking each up again (see readRows).
	prefetched map[objectRelation][]graph.Relationship
	nodes      int // nodes created so far
	// counting walks the tree without building it: nodes are one scratch
	// node, and children are not kept. It keeps the results it read, in
	// the order it read them, for the build to replay: the build walks the
	// same tree, so it reads them again in that order.
	counting  bool
	scratch   Node
	read      [][]graph.Relationship
	replay    [][]graph.Relationship
	replaying bool
	id        [1]string // the filter's IDs, reused by every read
	// arena is the unused rest of the nodes allocated at once, from which
	// new nodes are carved; kids likewise for their children's slices
	// (see slots).
	arena []Node
	kids  []*Node

	// oversize, set on a count, refuses a tree at an object#relation
	// known to be over the limit (known is then its size) and learns from
	// a count that crosses the limit (see Oversize). For that the count
	// keeps the path of object#relations it is in, the path at the node
	// that crossed the limit (crossed), its Seen marks, the relations it
	// read rows of and the instant the first row it read expires (until).
	// alone counts one object#relation on its own: its limit is on the
	// nodes less the Seen marks.
	oversize  *Oversize
	alone     bool
	known     *sizeFact
	path      []objectRelation
	crossed   []objectRelation
	seenMarks int
	reads     [][2]string
	until     int64
}

// objectRelation keys the seen set without building a string per node.
type objectRelation struct {
	object   graph.ObjectRef
	relation string
}

// arenaChunk is how many nodes the expander allocates at once when its
// arena runs out.
const arenaChunk = 256

// node returns a new node holding n.
func (x *expander) node(n Node) *Node {
	if x.counting {
		return &x.scratch
	}
	if len(x.arena) == 0 {
		x.arena = make([]Node, arenaChunk)
	}
	p := &x.arena[0]
	*p = n
	x.arena = x.arena[1:]
	return p
}

// count accounts for n new nodes against Options.MaxNodes.
func (x *expander) count(n int) error {
	x.nodes += n
	nodes := x.nodes
	if x.alone {
		nodes -= x.seenMarks
	}
	if nodes > x.opts.MaxNodes {
		if x.oversize != nil && x.crossed == nil {
			x.crossed = slices.Clone(x.path)
		}
		return x.tooLarge()
	}
	return nil
}

func (x *expander) tooLarge() error {
	return fmt.Errorf("%w: more than %d nodes", ErrTooLarge, x.opts.MaxNodes)
}

// adopt makes c the last child of n, unless the expander is counting.
func (x *expander) adopt(n, c *Node) {
	if !x.counting {
		n.Children = append(n.Children, c)
	}
}

// slots returns an empty slice with room for the n children a node being
// built will adopt, carved from a chunk as nodes are (see node): a tree
// of thousands of nodes then allocates its children's slices a few
// times, not once or more per node.
func (x *expander) slots(n int) []*Node {
	if x.counting || n == 0 {
		return nil
	}
	if len(x.kids) < n {
		x.kids = make([]*Node, max(n, arenaChunk))
	}
	s := x.kids[:0:n]
	x.kids = x.kids[n:]
	return s
}

func (x *expander) object(o graph.ObjectRef, rel string, depth int) (*Node, error) {
	if depth > x.opts.MaxDepth {
		return nil, fmt.Errorf("%w (%d) at %s#%s", ErrMaxDepth, x.opts.MaxDepth, o, rel)
	}
	if err := x.count(1); err != nil {
		return nil, err
	}
	// One map operation marks o#rel seen and tells whether it was.
	key := objectRelation{o, rel}
	before := len(x.seen)
	x.seen[key] = true
	seen := len(x.seen) == before
	if x.opts.Shallow && !seen {
		// Only the enclosing expansions count as seen.
		defer delete(x.seen, key)
	}
	if x.oversize != nil {
		if seen {
			x.seenMarks++
		} else {
			if f, ok := x.oversize.over(x, key); ok {
				known := f // allocated here, not for every object#relation asked about
				x.known = &known
				return nil, x.tooLarge()
			}
			x.path = append(x.path, key)
			defer func() { x.path = x.path[:len(x.path)-1] }()
		}
	}
	def := x.s.Definitions[o.Type]
	if p := def.Permissions[rel]; p != nil {
		n := x.node(Node{Op: OpPermission, Object: o, Relation: rel})
		if seen {
			n.Seen = true
			return n, nil
		}
		c, err := x.expr(o, p.Expr, depth)
		if err != nil {
			return nil, err
		}
		n.Children = x.slots(1)
		x.adopt(n, c)
		return n, nil
	}
	n := x.node(Node{Op: OpRelation, Object: o, Relation: rel})
	if seen {
		n.Seen = true
		return n, nil
	}
	rows, err := x.query(o, rel)
	if err != nil {
		return nil, err
	}
	// Only the subject sets the relation allows are expanded: a check
	// follows no others (a relationship the schema no longer allows is
	// shown, as a leaf).
	r := def.Relations[rel]
	nests := !x.opts.Shallow && r != nil && slices.ContainsFunc(r.Allowed, func(a schema.AllowedSubject) bool { return a.Relation != "" })
	var leaves []*Node
	switch {
	case !x.counting:
		leaves = make([]*Node, len(rows))
		for i, rship := range rows {
			leaves[i] = x.node(leaf(rship))
		}
		n.Children = leaves
	case nests:
		// Counting keeps only the subject sets it walks into.
		for _, rship := range rows {
			if rship.Subject.Relation != "" {
				leaves = append(leaves, &Node{Subject: rship.Subject})
			}
		}
	}
	if !nests {
		return n, nil
	}
	for _, l := range leaves {
		sub := l.Subject
		if sub.Relation == "" || !slices.ContainsFunc(r.Allowed, func(a schema.AllowedSubject) bool {
			return a.Type == sub.Object.Type && a.Relation == sub.Relation
		}) {
			continue
		}
		if sd := x.s.Definitions[sub.Object.Type]; sd == nil || !sd.Has(sub.Relation) {
			continue
		}
		c, err := x.object(sub.Object, sub.Relation, depth+1)
		if err != nil {
			return nil, err
		}
		l.Children = x.slots(1)
		x.adopt(l, c)
	}
	return n, nil
}

// sliceReader hands back a query's whole result at once, shared and
// read-only, as storage/readcache's readers do: a cached result is then
// walked where it lies, and its length is known before its nodes are built.
type sliceReader interface {
	QueryRelationshipSliceUpTo(ctx context.Context, f storage.Filter, opts storage.QueryOptions, max int) ([]graph.Relationship, bool, error)
}

// query reads the relationships of o#rel and counts them as nodes; it
// reads no more rows than the tree has room for. The slice may be shared
// with a cache: the expander only reads it.
func (x *expander) query(o graph.ObjectRef, rel string) ([]graph.Relationship, error) {
	if x.replaying {
		if len(x.replay) == 0 {
			return nil, errors.New("the tree changed between counting and building it")
		}
		rows := x.replay[0]
		x.replay = x.replay[1:]
		return rows, x.count(len(rows))
	}
	rows, err := x.readRows(o, rel)
	if err == nil && x.counting {
		x.read = append(x.read, rows)
	}
	if x.alone {
		x.reads = addRead(x.reads, o.Type, rel)
		for i := range rows {
			x.until = min(x.until, expiresAt(rows[i].Expiration))
		}
	}
	return rows, err
}

// readRows reads the relationships of o#rel and counts them; see query.
func (x *expander) readRows(o graph.ObjectRef, rel string) ([]graph.Relationship, error) {
	room := max(x.opts.MaxNodes-x.nodes, 0)
	if rows, ok := x.prefetched[objectRelation{o, rel}]; ok {
		delete(x.prefetched, objectRelation{o, rel})
		if len(rows) <= room {
			return rows, x.count(len(rows))
		}
		// Over the limit: read again below, which counts the cut.
	}
	x.id[0] = o.ID // no reader keeps the filter past the read
	f := storage.Filter{ResourceType: o.Type, ResourceIDs: x.id[:], Relation: rel}
	opts := storage.QueryOptions{Now: x.opts.Now}
	rows, whole, err := x.readUpTo(f, opts, room)
	if err != nil {
		return nil, err
	}
	if !whole {
		return nil, x.countCut(f, opts, room)
	}
	return rows, x.count(len(rows))
}

// readUpTo reads the rows of f, and reports whether they fit in room: a
// reader handing back whole results shares its slice, any other streams
// them.
func (x *expander) readUpTo(f storage.Filter, opts storage.QueryOptions, room int) ([]graph.Relationship, bool, error) {
	if sr, ok := x.r.(sliceReader); ok {
		return sr.QueryRelationshipSliceUpTo(x.ctx, f, opts, room)
	}
	return x.streamRows(f, opts, room)
}

// streamRows reads the rows of f from a reader that streams them, and
// reports whether they fit in room. It is readUpTo's fallback, a function
// of its own so that the range-over-func loop's closure moves none of
// its callers' variables to the heap on the sliceReader path.
func (x *expander) streamRows(f storage.Filter, opts storage.QueryOptions, room int) ([]graph.Relationship, bool, error) {
	var rows []graph.Relationship
	for r, err := range x.r.QueryRelationships(x.ctx, f, opts) {
		if err != nil {
			return nil, false, err
		}
		if len(rows) == room {
			return nil, false, nil
		}
		rows = append(rows, r)
	}
	return rows, true, nil
}

// countCut counts the room+1 rows of a read cut short at room, which
// crosses the limit. Counting an object#relation alone, the size it
// learns holds until the first of those rows expires, so it reads their
// expirations.
func (x *expander) countCut(f storage.Filter, opts storage.QueryOptions, room int) error {
	if x.alone {
		n := room + 1
		for r, err := range x.r.QueryRelationships(x.ctx, f, opts) {
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			n--
			x.until = min(x.until, expiresAt(r.Expiration))
		}
	}
	return x.count(room + 1)
}

func leaf(r graph.Relationship) Node {
	l := Node{Op: OpSubject, Subject: r.Subject, Expiration: r.Expiration}
	if r.Caveat != nil {
		l.Caveat = r.Caveat.Name
	}
	return l
}

func (x *expander) expr(o graph.ObjectRef, e schema.Expr, depth int) (*Node, error) {
	if _, ok := e.(*schema.RelationRef); !ok {
		if err := x.count(1); err != nil { // the expression's own node
			return nil, err
		}
	}
	switch e := e.(type) {
	case *schema.RelationRef:
		return x.object(o, e.Name, depth+1)
	case *schema.Nil:
		return x.node(Node{Op: OpNil, Object: o}), nil
	case *schema.Union:
		return x.children(x.node(Node{Op: OpUnion, Object: o}), o, e.Children, depth)
	case *schema.Intersection:
		return x.children(x.node(Node{Op: OpIntersection, Object: o}), o, e.Children, depth)
	case *schema.Exclusion:
		return x.children(x.node(Node{Op: OpExclusion, Object: o}), o, []schema.Expr{e.Base, e.Subtracted}, depth)
	case *schema.Arrow:
		var text string // a count's nodes are not kept
		switch {
		case x.counting:
		case e.Func == schema.ArrowAll:
			text = e.Tupleset + ".all(" + e.Target + ")"
		default:
			text = e.Tupleset + "->" + e.Target
		}
		n := x.node(Node{Op: OpArrow, Object: o, Arrow: text, All: e.Func == schema.ArrowAll})
		rels, err := x.query(o, e.Tupleset)
		if err != nil {
			return nil, err
		}
		n.Children = x.slots(len(rels))
		if x.counting {
			if err := x.prefetchTargets(rels, e.Target); err != nil {
				return nil, err
			}
		}
		for _, r := range rels {
			l := x.node(leaf(r))
			if td := x.s.Definitions[r.Subject.Object.Type]; td != nil && td.Has(e.Target) {
				c, err := x.object(r.Subject.Object, e.Target, depth+1)
				if err != nil {
					return nil, err
				}
				l.Children = x.slots(1)
				x.adopt(l, c)
			}
			x.adopt(n, l)
		}
		return n, nil
	}
	return nil, fmt.Errorf("unknown expression %T", e)
}

// relationObjectReader reads one relation of many objects with one
// query, keeping each object's rows as its own query's result, as
// storage/readcache's readers do; it reads at most max rows, and answers
// nil for an object whose rows that bound may have cut.
type relationObjectReader interface {
	QueryRelationObjectsUpTo(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions, max int) ([][]graph.Relationship, error)
}

// prefetchTargets reads, with one query, the relation target on the
// objects of an arrow's tupleset rows that the count is about to expand
// one by one, when target is a relation of their type: a team's
// member->delegate then costs one query for its members' delegates, not
// one each. The reads that follow take the rows from x.prefetched (the
// read cache keeps them for other trees); the query reads no more rows
// than the tree has room for.
func (x *expander) prefetchTargets(rels []graph.Relationship, target string) error {
	rr, ok := x.r.(relationObjectReader)
	room := x.opts.MaxNodes - x.nodes
	if !ok || len(rels) < 2 || room <= 0 {
		return nil
	}
	typ := rels[0].Subject.Object.Type
	if def := x.s.Definitions[typ]; def == nil || def.Relations[target] == nil {
		return nil
	}
	ids := make([]string, 0, len(rels))
	for _, r := range rels {
		if r.Subject.Object.Type != typ {
			return nil
		}
		if !x.seen[objectRelation{r.Subject.Object, target}] {
			ids = append(ids, r.Subject.Object.ID)
		}
	}
	if len(ids) < 2 {
		return nil
	}
	rows, err := rr.QueryRelationObjectsUpTo(x.ctx, typ, target, ids, storage.QueryOptions{Now: x.opts.Now}, room)
	if err != nil {
		return err
	}
	if x.prefetched == nil {
		x.prefetched = make(map[objectRelation][]graph.Relationship, len(ids))
	}
	for i, id := range ids {
		if rows[i] != nil { // whole
			x.prefetched[objectRelation{graph.ObjectRef{Type: typ, ID: id}, target}] = rows[i]
		}
	}
	return nil
}

func (x *expander) children(n *Node, o graph.ObjectRef, es []schema.Expr, depth int) (*Node, error) {
	n.Children = x.slots(len(es))
	for _, c := range es {
		cn, err := x.expr(o, c, depth)
		if err != nil {
			return nil, err
		}
		x.adopt(n, cn)
	}
	return n, nil
}

// String prints the tree, one node per line, children indented by two
// spaces, e.g.
//
//	document:q3#view
//	  union
//	    document:q3#viewer
//	      user:alice
//	    parent->view
//	      folder:plans [expires 2026-12-01T00:00:00Z]
//	        folder:plans#view (see above)
func (n *Node) String() string {
	var b strings.Builder
	n.write(&b, 0)
	return strings.TrimSuffix(b.String(), "\n")
}

func (n *Node) write(b *strings.Builder, indent int) {
	b.WriteString(strings.Repeat("  ", indent))
	switch n.Op {
	case OpRelation, OpPermission:
		b.WriteString(n.Object.String() + "#" + n.Relation)
	case OpUnion:
		b.WriteString("union")
	case OpIntersection:
		b.WriteString("intersection")
	case OpExclusion:
		b.WriteString("exclusion")
	case OpArrow:
		b.WriteString(n.Arrow)
	case OpNil:
		b.WriteString("nil")
	case OpSubject:
		b.WriteString(n.Subject.String())
	}
	if n.Caveat != "" {
		b.WriteString(" [caveat " + n.Caveat + "]")
	}
	if n.Expiration != nil {
		b.WriteString(" [expires " + n.Expiration.UTC().Format(time.RFC3339) + "]")
	}
	if n.Seen {
		b.WriteString(" (see above)")
	}
	b.WriteString("\n")
	for _, c := range n.Children {
		c.write(b, indent+1)
	}
}
