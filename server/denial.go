package server

import (
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pembadb/pemba/check"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// branchKinds maps check.BranchKind to its wire form.
var branchKinds = map[check.BranchKind]pb.ExplanationNode_Kind{
	check.BranchPermission:     pb.ExplanationNode_KIND_PERMISSION,
	check.BranchNoRelationship: pb.ExplanationNode_KIND_NO_RELATIONSHIP,
	check.BranchNothingToWalk:  pb.ExplanationNode_KIND_NOTHING_TO_WALK,
	check.BranchExpired:        pb.ExplanationNode_KIND_EXPIRED,
	check.BranchCaveatFalse:    pb.ExplanationNode_KIND_CAVEAT_FALSE,
	check.BranchExcluded:       pb.ExplanationNode_KIND_EXCLUDED,
	check.BranchIntersection:   pb.ExplanationNode_KIND_INTERSECTION,
	check.BranchArrow:          pb.ExplanationNode_KIND_ARROW,
	check.BranchCycle:          pb.ExplanationNode_KIND_CYCLE,
	check.BranchGranted:        pb.ExplanationNode_KIND_GRANTED,
}

// denialToProto converts a denial explanation.
func denialToProto(d *check.Denial) *pb.DenialExplanation {
	if d == nil || d.Root == nil {
		return nil
	}
	return &pb.DenialExplanation{
		Subject: subjectToProto(d.Subject),
		Root:    branchToProto(d, d.Root),
		Text:    d.String(),
	}
}

// branchToProto converts branch b of d and the branches under it.
func branchToProto(d *check.Denial, b *check.Branch) *pb.ExplanationNode {
	n := &pb.ExplanationNode{
		Kind:           branchKinds[b.Kind],
		Label:          b.Label,
		Permissionship: permissionshipToProto(b.Permissionship),
		Object:         objectToProto(b.Object),
		Relation:       b.Relation,
		Expression:     b.Expr,
		Caveat:         b.Caveat,
		Path:           pathToProto(b.Path, nil),
		Omitted:        uint32(b.Omitted),
		Text:           d.Line(b),
	}
	if b.Relationship != nil {
		n.Relationship = relationshipToProto(*b.Relationship)
	}
	if len(b.Context) > 0 {
		// A context the engine evaluated a caveat with came from a request
		// or a relationship, both of which were JSON.
		if s, err := structpb.NewStruct(b.Context); err == nil {
			n.Context = s
		}
	}
	for _, c := range b.Children {
		n.Children = append(n.Children, branchToProto(d, c))
	}
	return n
}
