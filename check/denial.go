package check

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pembadb/pemba/graph"
)

// Bounds of a Denial: what they cut is counted in Branch.Omitted.
const (
	// MaxDenialBranches bounds the branches of a Denial.
	MaxDenialBranches = 64
	// MaxDenialDepth bounds how deeply a Denial nests.
	MaxDenialDepth = 16
	// maxDenialReads bounds the relationships one step of a Denial reads.
	maxDenialReads = 4 * MaxDenialBranches
)

// BranchKind says what a Branch of a Denial reports.
type BranchKind int

const (
	// BranchPermission is a permission or relation that failed; its own
	// branches follow as Children (Expr is a permission's expression).
	BranchPermission BranchKind = iota
	// BranchNoRelationship: no relationship of Object#Relation leads to
	// the subject.
	BranchNoRelationship
	// BranchNothingToWalk: an arrow's tupleset, Object#Relation, has no
	// relationship, so the arrow reaches no object.
	BranchNothingToWalk
	// BranchExpired: Relationship would lead to the subject but expired.
	BranchExpired
	// BranchCaveatFalse: Relationship's caveat (Caveat) is false with the
	// values in Context.
	BranchCaveatFalse
	// BranchExcluded: the base of an exclusion granted and so did its
	// subtracted side; Children are the two, as BranchGranted.
	BranchExcluded
	// BranchIntersection: Children explain the first operand of the
	// intersection that failed.
	BranchIntersection
	// BranchArrow: Children are the objects the arrow's tupleset reached,
	// each with why it failed.
	BranchArrow
	// BranchCycle: Object#Relation is being explained by an enclosing
	// branch.
	BranchCycle
	// BranchGranted: a branch that grants (Permissionship says how),
	// proved by Path.
	BranchGranted
)

// Denial explains a NoPermission answer: each branch of the permission
// that was tried and why it failed. It is bounded by MaxDenialBranches
// and MaxDenialDepth. Every branch that says it failed does not grant at
// the checked revision: its Permissionship is the engine's own answer.
type Denial struct {
	Subject graph.SubjectRef
	// Now is the instant expirations were judged at.
	Now  time.Time
	Root *Branch
}

// Branch is one branch of a Denial.
type Branch struct {
	Kind BranchKind
	// Label is the branch as the schema or the data names it: "viewer",
	// "parent->view", "viewer & approver", "folder:x#view".
	Label string
	// Permissionship is the engine's answer for the branch: NoPermission
	// for every kind but BranchGranted.
	Permissionship Permissionship
	Object         graph.ObjectRef
	Relation       string
	// Expr is a permission's expression, or the subtracted side of an
	// exclusion.
	Expr string
	// Relationship is the relationship an Expired, CaveatFalse or arrow
	// branch is about.
	Relationship *graph.Relationship
	// Caveat and Context: the false caveat and its parameters' values.
	Caveat  string
	Context map[string]any
	// Path proves a BranchGranted branch.
	Path     *Path
	Children []*Branch
	// Omitted counts the branches under this one the bounds cut (at
	// least that many).
	Omitted int
}

// failed reports whether the branch says it failed.
func (b *Branch) failed() bool { return b.Kind != BranchGranted }

// String renders the denial as an indented tree, e.g.
//
//	document:plan#view = viewer + editor - banned
//	  ✗ viewer: no relationship document:plan#viewer reaches user:bob
//	  ✗ editor: document:plan#editor@user:bob expired at 2026-11-30T10:00:00Z
func (d *Denial) String() string {
	if d == nil || d.Root == nil {
		return ""
	}
	var b strings.Builder
	d.write(&b, d.Root, "", true)
	return strings.TrimSuffix(b.String(), "\n")
}

func (d *Denial) write(b *strings.Builder, n *Branch, indent string, root bool) {
	b.WriteString(indent)
	if !root {
		if n.failed() {
			b.WriteString("✗ ")
		} else {
			b.WriteString("✓ ")
		}
	}
	b.WriteString(d.Line(n))
	b.WriteString("\n")
	for _, c := range n.Children {
		d.write(b, c, indent+"  ", false)
	}
	if n.Omitted > 0 {
		fmt.Fprintf(b, "%s  … %d more branches not shown\n", indent, n.Omitted)
	}
}

// Line is branch n's own text, without its mark and children: its label
// and the reason it failed.
func (d *Denial) Line(n *Branch) string {
	label := n.Label
	if label != "" {
		label += ": "
	}
	switch n.Kind {
	case BranchPermission:
		if n.Expr != "" {
			return n.Label + " = " + n.Expr
		}
		return n.Label
	case BranchNoRelationship:
		return fmt.Sprintf("%sno relationship %s#%s reaches %s", label, n.Object, n.Relation, d.Subject)
	case BranchNothingToWalk:
		return fmt.Sprintf("%sno relationship %s#%s to walk", label, n.Object, n.Relation)
	case BranchExpired:
		r := *n.Relationship
		r.Expiration = nil
		return fmt.Sprintf("%s%s expired at %s", label, r.String(), n.Relationship.Expiration.UTC().Format(time.RFC3339Nano))
	case BranchCaveatFalse:
		ctx := "no values"
		if len(n.Context) > 0 {
			if j, err := json.Marshal(n.Context); err == nil { // map keys sorted
				ctx = string(j)
			}
		}
		return fmt.Sprintf("%scaveat %s is false on %s with %s", label, n.Caveat, n.Relationship.Key(), ctx)
	case BranchExcluded:
		return fmt.Sprintf("%sexcluded by %s", label, n.Expr)
	case BranchIntersection:
		return n.Label + ": an operand failed"
	case BranchArrow:
		return n.Label
	case BranchCycle:
		return fmt.Sprintf("%s%s#%s is already being explained above", label, n.Object, n.Relation)
	case BranchGranted:
		s := label + "granted"
		if n.Permissionship == Conditional {
			s = label + "conditional"
		}
		if n.Path != nil {
			s += " by " + n.Path.String()
		}
		return s
	}
	return label
}
