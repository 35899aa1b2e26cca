package server

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/expand"
	"github.com/pembadb/pemba/graph"
)

func (svc *authzedPermissions) ExpandPermissionTree(ctx context.Context, req *v1.ExpandPermissionTreeRequest) (*v1.ExpandPermissionTreeResponse, error) {
	resp, err := svc.expandPermissionTree(ctx, req)
	return resp, svc.s.authzedStatus(authzedPermissionsService+"ExpandPermissionTree", err)
}

// expandPermissionTree expands one level as SpiceDB does: the permission's
// expression down to the relationships of each relation it reaches,
// following arrows, with the subject sets of those relationships as
// leaves for the client to expand with further calls.
func (svc *authzedPermissions) expandPermissionTree(ctx context.Context, req *v1.ExpandPermissionTreeRequest) (*v1.ExpandPermissionTreeResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	res, err := objectFromAuthzed(req.GetResource(), "resource")
	if err != nil {
		return nil, err
	}
	if req.GetPermission() == "" {
		return nil, invalidField("permission", "missing")
	}
	rev, snap, err := s.snapshotAuthzed(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	if err := validateAuthzedQuery(snap.Schema, res.Type, req.GetPermission(), nil, core.Path{"resource", "type"}); err != nil {
		return nil, err
	}
	tree, err := s.expandTree(ctx, snap, res, req.GetPermission(), true)
	if err != nil {
		return nil, err
	}
	out, err := expandToAuthzed(tree, expandedAt{tree.Object, tree.Relation}, 1)
	if err != nil {
		return nil, err
	}
	resp := &v1.ExpandPermissionTreeResponse{TreeRoot: out, ExpandedAt: s.zedToken(rev)}
	if n := proto.Size(resp); n > MaxExpandReplyBytes {
		return nil, expandReplyTooLarge(res, req.GetPermission(), n)
	}
	return resp, nil
}

// expandedAt is the object#relation a node of a SpiceDB tree reports as
// expanded: its own for a relation or permission, the enclosing
// permission's for the set operations and arrows of its expression.
type expandedAt struct {
	object   graph.ObjectRef
	relation string
}

// setOps maps expand's set operations to SpiceDB's.
var setOps = map[expand.Op]v1.AlgebraicSubjectSet_Operation{
	expand.OpUnion:        v1.AlgebraicSubjectSet_OPERATION_UNION,
	expand.OpIntersection: v1.AlgebraicSubjectSet_OPERATION_INTERSECTION,
	expand.OpExclusion:    v1.AlgebraicSubjectSet_OPERATION_EXCLUSION,
}

// expandToAuthzed converts a shallow expand tree whose root sits at
// nesting level into SpiceDB's form: a permission becomes the set
// operation of its expression (a union of one for an expression without
// a set operation), an arrow the union (an .all arrow the
// intersection) of the targets it reaches, a relation a leaf of the
// subjects of its relationships, subject sets and wildcards included.
// A node seen in a cycle, and nil, are leaves without subjects.
func expandToAuthzed(n *expand.Node, at expandedAt, level int) (*v1.PermissionRelationshipTree, error) {
	if level > maxExpandNesting {
		return nil, status.Errorf(codes.ResourceExhausted,
			"expand: the tree nests deeper than %d levels, more than a client can decode; lower --max-depth", maxExpandNesting)
	}
	if n.Op == expand.OpRelation || n.Op == expand.OpPermission {
		at = expandedAt{n.Object, n.Relation}
	}
	tree := &v1.PermissionRelationshipTree{ExpandedObject: objectToAuthzed(at.object), ExpandedRelation: at.relation}
	leaf := &v1.DirectSubjectSet{}
	switch n.Op {
	case expand.OpPermission:
		if n.Seen || len(n.Children) == 0 {
			break
		}
		c := n.Children[0]
		if _, setOp := setOps[c.Op]; !setOp {
			// An expression without a set operation (a relation, an
			// arrow, nil) is the union of that one operand, as SpiceDB
			// compiles it.
			child, err := expandToAuthzed(c, at, level+1)
			if err != nil {
				return nil, err
			}
			return intermediate(tree, v1.AlgebraicSubjectSet_OPERATION_UNION, child), nil
		}
		return expandToAuthzed(c, at, level)
	case expand.OpRelation:
		for _, l := range n.Children {
			leaf.Subjects = append(leaf.Subjects, subjectToAuthzed(l.Subject))
		}
	case expand.OpUnion, expand.OpIntersection, expand.OpExclusion:
		children, err := expandChildren(n.Children, at, level)
		if err != nil {
			return nil, err
		}
		return intermediate(tree, setOps[n.Op], children...), nil
	case expand.OpArrow:
		// Each child is a tupleset relationship; its child, when the
		// object it names has the arrow's target, expands that target.
		var targets []*expand.Node
		for _, l := range n.Children {
			if len(l.Children) > 0 {
				targets = append(targets, l.Children[0])
			}
		}
		children, err := expandChildren(targets, at, level)
		if err != nil {
			return nil, err
		}
		op := v1.AlgebraicSubjectSet_OPERATION_UNION
		if n.All {
			op = v1.AlgebraicSubjectSet_OPERATION_INTERSECTION
		}
		return intermediate(tree, op, children...), nil
	}
	tree.TreeType = &v1.PermissionRelationshipTree_Leaf{Leaf: leaf}
	return tree, nil
}

// expandChildren converts the operands of a set operation or arrow.
func expandChildren(ns []*expand.Node, at expandedAt, level int) ([]*v1.PermissionRelationshipTree, error) {
	out := make([]*v1.PermissionRelationshipTree, 0, len(ns))
	for _, c := range ns {
		t, err := expandToAuthzed(c, at, level+1)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// intermediate makes tree the set operation op of children.
func intermediate(tree *v1.PermissionRelationshipTree, op v1.AlgebraicSubjectSet_Operation, children ...*v1.PermissionRelationshipTree) *v1.PermissionRelationshipTree {
	tree.TreeType = &v1.PermissionRelationshipTree_Intermediate{Intermediate: &v1.AlgebraicSubjectSet{Operation: op, Children: children}}
	return tree
}

// subjectToAuthzed converts a subject; a whole object has no relation.
func subjectToAuthzed(s graph.SubjectRef) *v1.SubjectReference {
	return &v1.SubjectReference{Object: objectToAuthzed(s.Object), OptionalRelation: s.Relation}
}
