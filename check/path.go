package check

import (
	"slices"
	"strings"

	"github.com/pembadb/pemba/graph"
)

// Path is an access path: a chain of relationships and schema steps from
// the subject to the resource's permission. It is a proof: every
// relationship in it exists (and is unexpired) at the checked revision.
type Path struct {
	Subject graph.SubjectRef
	// Steps go from the subject towards the resource; the last step is the
	// checked resource and permission.
	Steps []Step
	// Also holds the chains the other branches of an intersection (or the
	// other objects of an .all arrow) needed; each starts at Subject too.
	Also []*Path
	// Caveats names the caveats on the relationships of the path (all
	// chains), sorted; Missing, for a Conditional result, the parameters
	// that would decide them.
	Caveats []string
	Missing []string
}

// Step is one hop of a Path: the object and relation or permission reached.
type Step struct {
	Object   graph.ObjectRef
	Relation string
	// Relationship is the relationship traversed to reach this step; nil for
	// a schema step (a permission computed from a relation or permission of
	// the same object).
	Relationship *graph.Relationship
	// Via names the arrow walked ("parent->view", "parent.all(view)"), or
	// is empty.
	Via string
}

// pathNode is the evaluator's form of a path: a chain from a resource
// (this node) down to the subject, built only in explain mode.
type pathNode struct {
	obj   graph.ObjectRef
	rel   string
	via   string
	rship *graph.Relationship
	next  *pathNode   // toward the subject
	also  []*pathNode // other chains an intersection required
}

// joinPaths records that both a and b were needed.
func joinPaths(a, b *pathNode) *pathNode {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	c := *a
	c.also = append(slices.Clip(c.also), b)
	return &c
}

// toPath converts a chain into a Path for subject.
func toPath(n *pathNode, subject graph.SubjectRef, missing []string) *Path {
	if n == nil {
		return nil
	}
	p := &Path{Subject: subject}
	var caveats []string
	var walk func(n *pathNode, p *Path)
	walk = func(n *pathNode, p *Path) {
		for ; n != nil; n = n.next {
			p.Steps = append(p.Steps, Step{Object: n.obj, Relation: n.rel, Relationship: n.rship, Via: n.via})
			if n.rship != nil && n.rship.Caveat != nil {
				caveats = append(caveats, n.rship.Caveat.Name)
			}
			for _, a := range n.also {
				q := &Path{Subject: subject}
				walk(a, q)
				slices.Reverse(q.Steps)
				p.Also = append(p.Also, q)
			}
		}
	}
	walk(n, p)
	slices.Reverse(p.Steps)
	slices.Sort(caveats)
	p.Caveats = slices.Compact(caveats)
	p.Missing = missing
	return p
}

// String renders the path on one line, e.g.
//
//	user:alice → group:eng#member → folder:plans#viewer → document:q3#view (via parent->view)
//
// A schema step followed by an arrow from the same object is folded into
// the arrow's "via". Intersection branches follow as "and (...)".
func (p *Path) String() string {
	if p == nil {
		return "(no path)"
	}
	var b strings.Builder
	p.write(&b)
	if len(p.Missing) > 0 {
		b.WriteString(" missing ")
		b.WriteString(strings.Join(p.Missing, ", "))
	}
	return b.String()
}

func (p *Path) write(b *strings.Builder) {
	b.WriteString(p.Subject.String())
	for i, s := range p.Steps {
		if s.Relationship == nil && s.Via == "" && i+1 < len(p.Steps) {
			next := p.Steps[i+1]
			if next.Via != "" {
				continue
			}
		}
		b.WriteString(" → ")
		b.WriteString(s.Object.String())
		b.WriteString("#")
		b.WriteString(s.Relation)
		if s.Relationship != nil && s.Relationship.Caveat != nil {
			b.WriteString("[" + s.Relationship.Caveat.Name + "]")
		}
		if s.Via != "" {
			b.WriteString(" (via " + s.Via + ")")
		}
	}
	for _, a := range p.Also {
		b.WriteString(" and (")
		a.write(b)
		b.WriteString(")")
	}
}
