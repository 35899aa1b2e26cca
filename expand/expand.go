package expand

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	x := &expander{ctx: ctx, s: s, r: r, opts: opts, seen: make(map[string]bool)}
	n, err := x.object(resource, perm, 1)
	if err != nil {
		return nil, fmt.Errorf("expand %s#%s: %w", resource, perm, err)
	}
	return n, nil
}

type expander struct {
	ctx   context.Context
	s     *schema.Schema
	r     storage.Reader
	opts  Options
	seen  map[string]bool // object#relation already expanded
	nodes int             // nodes created so far
}

// count accounts for n new nodes against Options.MaxNodes.
func (x *expander) count(n int) error {
	x.nodes += n
	if x.nodes > x.opts.MaxNodes {
		return fmt.Errorf("%w: more than %d nodes", ErrTooLarge, x.opts.MaxNodes)
	}
	return nil
}

func (x *expander) object(o graph.ObjectRef, rel string, depth int) (*Node, error) {
	if depth > x.opts.MaxDepth {
		return nil, fmt.Errorf("%w (%d) at %s#%s", ErrMaxDepth, x.opts.MaxDepth, o, rel)
	}
	if err := x.count(1); err != nil {
		return nil, err
	}
	key := o.String() + "#" + rel
	if x.opts.Shallow && !x.seen[key] {
		// Only the enclosing expansions count as seen.
		defer delete(x.seen, key)
	}
	def := x.s.Definitions[o.Type]
	if p := def.Permissions[rel]; p != nil {
		n := &Node{Op: OpPermission, Object: o, Relation: rel}
		if x.seen[key] {
			n.Seen = true
			return n, nil
		}
		x.seen[key] = true
		c, err := x.expr(o, p.Expr, depth)
		if err != nil {
			return nil, err
		}
		n.Children = []*Node{c}
		return n, nil
	}
	n := &Node{Op: OpRelation, Object: o, Relation: rel}
	if x.seen[key] {
		n.Seen = true
		return n, nil
	}
	x.seen[key] = true
	var leaves []*Node
	for rship, err := range x.r.QueryRelationships(x.ctx, storage.Filter{ResourceType: o.Type, ResourceIDs: []string{o.ID}, Relation: rel}, storage.QueryOptions{Now: x.opts.Now}) {
		if err != nil {
			return nil, err
		}
		if err := x.count(1); err != nil {
			return nil, err
		}
		leaves = append(leaves, leaf(rship))
	}
	n.Children = leaves
	if x.opts.Shallow {
		return n, nil
	}
	for _, l := range leaves {
		sub := l.Subject
		if sub.Relation == "" {
			continue
		}
		if sd := x.s.Definitions[sub.Object.Type]; sd == nil || !sd.Has(sub.Relation) {
			continue
		}
		c, err := x.object(sub.Object, sub.Relation, depth+1)
		if err != nil {
			return nil, err
		}
		l.Children = []*Node{c}
	}
	return n, nil
}

func leaf(r graph.Relationship) *Node {
	l := &Node{Op: OpSubject, Subject: r.Subject, Expiration: r.Expiration}
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
		return &Node{Op: OpNil, Object: o}, nil
	case *schema.Union:
		return x.children(&Node{Op: OpUnion, Object: o}, o, e.Children, depth)
	case *schema.Intersection:
		return x.children(&Node{Op: OpIntersection, Object: o}, o, e.Children, depth)
	case *schema.Exclusion:
		return x.children(&Node{Op: OpExclusion, Object: o}, o, []schema.Expr{e.Base, e.Subtracted}, depth)
	case *schema.Arrow:
		text := e.Tupleset + "->" + e.Target
		if e.Func == schema.ArrowAll {
			text = e.Tupleset + ".all(" + e.Target + ")"
		}
		n := &Node{Op: OpArrow, Object: o, Arrow: text, All: e.Func == schema.ArrowAll}
		var rels []graph.Relationship
		for r, err := range x.r.QueryRelationships(x.ctx, storage.Filter{ResourceType: o.Type, ResourceIDs: []string{o.ID}, Relation: e.Tupleset}, storage.QueryOptions{Now: x.opts.Now}) {
			if err != nil {
				return nil, err
			}
			if err := x.count(1); err != nil {
				return nil, err
			}
			rels = append(rels, r)
		}
		for _, r := range rels {
			l := leaf(r)
			if td := x.s.Definitions[r.Subject.Object.Type]; td != nil && td.Has(e.Target) {
				c, err := x.object(r.Subject.Object, e.Target, depth+1)
				if err != nil {
					return nil, err
				}
				l.Children = []*Node{c}
			}
			n.Children = append(n.Children, l)
		}
		return n, nil
	}
	return nil, fmt.Errorf("unknown expression %T", e)
}

func (x *expander) children(n *Node, o graph.ObjectRef, es []schema.Expr, depth int) (*Node, error) {
	for _, c := range es {
		cn, err := x.expr(o, c, depth)
		if err != nil {
			return nil, err
		}
		n.Children = append(n.Children, cn)
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
