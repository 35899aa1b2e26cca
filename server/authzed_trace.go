package server

import (
	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// debugTrace is the debug_trace of an explained check (with_tracing):
// check.NewTrace's tree of sub-checks in SpiceDB's form, which zed draws
// with `zed permission check --explain`. It is nil when res carries no
// explanation.
func debugTrace(sch *schema.Schema, subject graph.SubjectRef, res check.Result) *v1.DebugInformation {
	t := check.NewTrace(sch, res)
	if t == nil {
		return nil
	}
	return &v1.DebugInformation{Check: traceToAuthzed(sch, subjectToAuthzed(subject), t)}
}

// traceToAuthzed converts one node of a trace and its sub-checks. A node
// granted without sub-checks has no resolution, which clients draw as
// the subject reached; a denied one has empty sub-problems.
func traceToAuthzed(sch *schema.Schema, subject *v1.SubjectReference, t *check.Trace) *v1.CheckDebugTrace {
	out := &v1.CheckDebugTrace{
		Resource:       objectToAuthzed(t.Object),
		Permission:     t.Relation,
		PermissionType: v1.CheckDebugTrace_PERMISSION_TYPE_RELATION,
		Subject:        subject,
		Result:         traceResult(t.Result),
	}
	if t.Permission {
		out.PermissionType = v1.CheckDebugTrace_PERMISSION_TYPE_PERMISSION
	}
	if t.Expiration != nil {
		out.OptionalExpiresAt = timestamppb.New(*t.Expiration)
	}
	if c := t.Caveat; c != nil {
		out.CaveatEvaluationInfo = caveatEvalInfo(sch, c)
	}
	if len(t.Children) > 0 || t.Result == check.NoPermission {
		sub := &v1.CheckDebugTrace_SubProblems{}
		for _, c := range t.Children {
			sub.Traces = append(sub.Traces, traceToAuthzed(sch, subject, c))
		}
		out.Resolution = &v1.CheckDebugTrace_SubProblems_{SubProblems: sub}
	}
	return out
}

// traceResult converts a trace node's answer.
func traceResult(p check.Permissionship) v1.CheckDebugTrace_Permissionship {
	switch p {
	case check.HasPermission:
		return v1.CheckDebugTrace_PERMISSIONSHIP_HAS_PERMISSION
	case check.Conditional:
		return v1.CheckDebugTrace_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	}
	return v1.CheckDebugTrace_PERMISSIONSHIP_NO_PERMISSION
}

// caveatEvalInfo describes the caveat a trace node evaluated, with its
// expression from the schema.
func caveatEvalInfo(sch *schema.Schema, c *check.TraceCaveat) *v1.CaveatEvalInfo {
	info := &v1.CaveatEvalInfo{CaveatName: c.Name, Result: v1.CaveatEvalInfo_RESULT_FALSE}
	if cv := sch.Caveats[c.Name]; cv != nil {
		info.Expression = cv.Expression
	}
	switch c.Result {
	case check.HasPermission:
		info.Result = v1.CaveatEvalInfo_RESULT_TRUE
	case check.Conditional:
		info.Result = v1.CaveatEvalInfo_RESULT_MISSING_SOME_CONTEXT
		info.PartialCaveatInfo = &v1.PartialCaveatInfo{MissingRequiredContext: c.Missing}
	}
	if len(c.Context) > 0 {
		// Caveat contexts are JSON values, which structpb accepts.
		if s, err := structpb.NewStruct(c.Context); err == nil {
			info.Context = s
		}
	}
	return info
}
