package check

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// Trace is an explained check as a tree of sub-checks, the shape of
// SpiceDB's debug traces: each node is Object#Relation checked for the
// subject, with the engine's answer there and the sub-checks that decided
// it. It is built from a Result's Path (granted or conditional) or Denial
// (denied) by NewTrace, so it says no more than they do: a granted node
// shows the one chain that proves it, a denied one each branch tried.
type Trace struct {
	Object   graph.ObjectRef
	Relation string
	// Permission is true when Relation is a permission of Object's
	// definition, false for a relation.
	Permission bool
	Result     Permissionship
	// Caveat is the caveat of the relationship this node read, when it
	// has one.
	Caveat *TraceCaveat
	// Expiration is the expiration of the relationship this node read:
	// when it grants, until when; when it is denied as expired, since when.
	Expiration *time.Time
	// Children are the sub-checks. A granted node without children was
	// granted by a relationship naming the subject itself.
	Children []*Trace
}

// TraceCaveat is the caveat a Trace node evaluated.
type TraceCaveat struct {
	Name string
	// Context is the values it was evaluated with, when it was false.
	Context map[string]any
	// Result is HasPermission (true), NoPermission (false) or Conditional
	// (Missing names the parameters that would decide it).
	Result  Permissionship
	Missing []string
}

// NewTrace builds the trace of res, the answer to an explained check
// (Request.Explain) evaluated under sch. It returns nil when res carries
// no explanation.
func NewTrace(sch *schema.Schema, res Result) *Trace {
	switch {
	case res.Path != nil:
		return pathTrace(sch, res.Path, res.Permissionship)
	case res.Denial != nil && res.Denial.Root != nil:
		nodes := denialTraces(sch, res.Denial.Root, nil)
		if len(nodes) == 1 {
			return nodes[0]
		}
		root := res.Denial.Root
		return &Trace{Object: root.Object, Relation: root.Relation, Permission: isPermission(sch, root.Object, root.Relation),
			Result: NoPermission, Children: nodes}
	}
	return nil
}

// pathTrace turns a path, which runs from the subject to the resource,
// into the chain of checks from the resource down to the subject, each
// answered result. The chains an intersection also needed (Path.Also)
// hang under the last schema step of the object they start from: the
// permission that combined them.
func pathTrace(sch *schema.Schema, p *Path, result Permissionship) *Trace {
	if len(p.Steps) == 0 {
		return nil
	}
	nodes := make([]*Trace, len(p.Steps))
	for i, st := range p.Steps {
		n := &Trace{Object: st.Object, Relation: st.Relation, Permission: isPermission(sch, st.Object, st.Relation), Result: result}
		if r := st.Relationship; r != nil {
			n.Expiration = r.Expiration
			if r.Caveat != nil {
				c := &TraceCaveat{Name: r.Caveat.Name, Result: HasPermission}
				if result == Conditional {
					c.Result, c.Missing = Conditional, p.Missing
				}
				n.Caveat = c
			}
		}
		if i > 0 {
			n.Children = []*Trace{nodes[i-1]}
		}
		nodes[i] = n
	}
	for _, a := range p.Also {
		sub := pathTrace(sch, a, result)
		if sub == nil {
			continue
		}
		at := len(nodes) - 1
		for i := len(nodes) - 1; i > 0; i-- {
			if p.Steps[i].Object == sub.Object && p.Steps[i].Relationship == nil {
				at = i
				break
			}
		}
		nodes[at].Children = append(nodes[at].Children, sub)
	}
	return nodes[len(nodes)-1]
}

// denialTraces converts a denial branch under parent (nil at the root)
// into trace nodes: one for a branch about a permission or relation, its
// children's nodes for a branch that only groups them (an exclusion, an
// intersection's failed operand, the objects an arrow reached) or that
// repeats parent's check with nothing of its own to say.
func denialTraces(sch *schema.Schema, b *Branch, parent *Trace) []*Trace {
	n := &Trace{Object: b.Object, Relation: b.Relation, Permission: isPermission(sch, b.Object, b.Relation), Result: b.Permissionship}
	switch b.Kind {
	case BranchExcluded, BranchIntersection, BranchArrow:
		var out []*Trace
		for _, c := range b.Children {
			out = append(out, denialTraces(sch, c, parent)...)
		}
		return out
	case BranchPermission:
		for _, c := range b.Children {
			n.Children = append(n.Children, denialTraces(sch, c, n)...)
		}
	case BranchExpired:
		n.Expiration = b.Relationship.Expiration
	case BranchCaveatFalse:
		n.Caveat = &TraceCaveat{Name: b.Caveat, Context: b.Context, Result: NoPermission}
	case BranchGranted:
		if b.Path != nil {
			if t := pathTrace(sch, b.Path, b.Permissionship); t != nil {
				if t.Object == b.Object && t.Relation == b.Relation {
					n = t
				} else {
					n.Children = []*Trace{t}
				}
			}
		} else if r := b.Relationship; r != nil {
			n.Expiration = r.Expiration
		}
	}
	if parent != nil && n.Object == parent.Object && n.Relation == parent.Relation && n.Caveat == nil && n.Expiration == nil {
		return n.Children
	}
	return []*Trace{n}
}

// isPermission reports whether rel is a permission of obj's definition.
func isPermission(sch *schema.Schema, obj graph.ObjectRef, rel string) bool {
	def := sch.Definitions[obj.Type]
	return def != nil && def.Permissions[rel] != nil
}

// String renders the trace as an indented tree, one check a line, e.g.
//
//	✗ document:plan#view (permission)
//	  ✗ document:plan#viewer (relation) caveat on_network false with {"ip":"10.0.0.9"}
//	  ✓ document:plan#banned (relation)
func (t *Trace) String() string {
	var b strings.Builder
	t.write(&b, "")
	return strings.TrimSuffix(b.String(), "\n")
}

func (t *Trace) write(b *strings.Builder, indent string) {
	if t == nil {
		return
	}
	b.WriteString(indent)
	switch t.Result {
	case HasPermission:
		b.WriteString("✓ ")
	case Conditional:
		b.WriteString("? ")
	default:
		b.WriteString("✗ ")
	}
	b.WriteString(t.Object.String() + "#" + t.Relation)
	if t.Permission {
		b.WriteString(" (permission)")
	} else {
		b.WriteString(" (relation)")
	}
	if c := t.Caveat; c != nil {
		b.WriteString(" caveat " + c.Name)
		switch c.Result {
		case HasPermission:
			b.WriteString(" true")
		case Conditional:
			b.WriteString(" missing " + strings.Join(c.Missing, ", "))
		default:
			b.WriteString(" false")
			if len(c.Context) > 0 {
				if j, err := json.Marshal(c.Context); err == nil { // map keys sorted
					b.WriteString(" with " + string(j))
				}
			}
		}
	}
	if t.Expiration != nil {
		b.WriteString(" expires " + t.Expiration.UTC().Format(time.RFC3339))
	}
	b.WriteString("\n")
	for _, c := range t.Children {
		c.write(b, indent+"  ")
	}
}
