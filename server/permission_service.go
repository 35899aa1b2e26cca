package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/audit"
	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

type permissionService struct {
	pb.UnimplementedPermissionServiceServer
	s *Server
}

func permissionshipToProto(p check.Permissionship) pb.Permissionship {
	switch p {
	case check.HasPermission:
		return pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION
	case check.Conditional:
		return pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	}
	return pb.Permissionship_PERMISSIONSHIP_NO_PERMISSION
}

// pathToProto converts an access path; prov, when not nil, holds the
// audit event that wrote each relationship of the path (provenance).
func pathToProto(p *check.Path, prov map[graph.Key]*pb.AuditEvent) *pb.AccessPath {
	if p == nil {
		return nil
	}
	out := &pb.AccessPath{
		Subject:        subjectToProto(p.Subject),
		Caveats:        p.Caveats,
		MissingContext: p.Missing,
		Text:           p.String(),
	}
	for _, st := range p.Steps {
		step := &pb.PathStep{Object: objectToProto(st.Object), Relation: st.Relation, Via: st.Via}
		if st.Relationship != nil {
			step.Relationship = relationshipToProto(*st.Relationship)
			step.Provenance = prov[st.Relationship.Key()]
		}
		out.Steps = append(out.Steps, step)
	}
	for _, a := range p.Also {
		out.Also = append(out.Also, pathToProto(a, prov))
	}
	return out
}

// queryError names the request field of a query the engine refused:
// the part a check.RequestError names, or the caveat context of a
// check.ContextError, below prefix (where the query sits in the
// request). Other errors pass unchanged.
func queryError(prefix core.Path, err error) error {
	var re *check.RequestError
	if errors.As(err, &re) {
		return core.Invalid(prefix.Child(strings.Split(re.Part, ".")...), errors.New(re.Message))
	}
	var ce *check.ContextError
	if errors.As(err, &ce) {
		return core.Invalid(prefix.Child("context"), ce.Err)
	}
	return err
}

// checkRequest converts the parts of a check; field prefixes errors.
func checkRequest(res *pb.ObjectRef, perm string, sub *pb.SubjectRef, field string) (check.Request, error) {
	r, err := objectFromProto(res, field+"resource")
	if err != nil {
		return check.Request{}, err
	}
	if perm == "" {
		return check.Request{}, invalidField(field+"permission", "missing")
	}
	su, err := subjectFromProto(sub, field+"subject")
	if err != nil {
		return check.Request{}, err
	}
	return check.Request{Resource: r, Permission: perm, Subject: su}, nil
}

func (svc *permissionService) CheckPermission(ctx context.Context, req *pb.CheckPermissionRequest) (*pb.CheckPermissionResponse, error) {
	s := svc.s
	creq, err := checkRequest(req.GetResource(), req.GetPermission(), req.GetSubject(), "")
	if err != nil {
		return nil, err
	}
	creq.Context = contextFromProto(req.GetContext())
	creq.Explain = req.GetExplain()
	creq.Now = time.Now()
	if req.GetProvenance() {
		if !req.GetExplain() {
			return nil, invalidField("provenance", "needs explain: it annotates the access path")
		}
		if err := s.auditEnabled(); err != nil {
			return nil, fmt.Errorf("provenance is read from the audit log: %w", err)
		}
	}
	rev, snap, err := s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	res, err := s.checker.Check(ctx, snap, creq)
	if err != nil {
		return nil, queryError(nil, err)
	}
	var prov map[graph.Key]*pb.AuditEvent
	if req.GetProvenance() {
		if prov, err = s.provenance(ctx, res.Path, rev); err != nil {
			return nil, err
		}
	}
	return &pb.CheckPermissionResponse{
		Permissionship: permissionshipToProto(res.Permissionship),
		MissingContext: res.Missing,
		Path:           pathToProto(res.Path, prov),
		Denial:         denialToProto(res.Denial),
		CheckedAt:      s.zookie(rev),
	}, nil
}

// provenance finds the audit event that wrote each relationship of p (all
// its chains) as it was at rev, keyed by the relationship's identity;
// relationships the log has no event for map to nil.
func (s *Server) provenance(ctx context.Context, p *check.Path, rev storage.Revision) (map[graph.Key]*pb.AuditEvent, error) {
	out := map[graph.Key]*pb.AuditEvent{}
	var walk func(p *check.Path) error
	walk = func(p *check.Path) error {
		if p == nil {
			return nil
		}
		for _, st := range p.Steps {
			if st.Relationship == nil {
				continue
			}
			k := st.Relationship.Key()
			if _, done := out[k]; done {
				continue
			}
			ev, ok, err := audit.Provenance(ctx, s.engine, *st.Relationship, rev)
			if err != nil {
				return fmt.Errorf("provenance of %s: %w", k, err)
			}
			out[k] = nil
			if ok {
				out[k] = s.auditEventToProto(ev)
			}
		}
		for _, a := range p.Also {
			if err := walk(a); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(p)
}

func (svc *permissionService) BulkCheckPermission(ctx context.Context, req *pb.BulkCheckPermissionRequest) (*pb.BulkCheckPermissionResponse, error) {
	s := svc.s
	items := req.GetItems()
	if err := s.requests.BulkCheckItems(len(items), core.Field("items")); err != nil {
		return nil, err
	}
	now := time.Now()
	reqs := make([]check.Request, len(items))
	for i, it := range items {
		r, err := checkRequest(it.GetResource(), it.GetPermission(), it.GetSubject(), fmt.Sprintf("items[%d].", i))
		if err != nil {
			return nil, err
		}
		r.Context = contextFromProto(it.GetContext())
		r.Now = now
		reqs[i] = r
	}
	rev, snap, err := s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	// A malformed item fails the request (above); an item naming a type,
	// relation or permission the schema does not define gets its own error,
	// like one whose evaluation fails, and the other items are answered.
	results, err := s.checker.BulkCheck(ctx, snap, reqs)
	if err != nil {
		return nil, err
	}
	itemError := func(err error) *pb.BulkCheckError {
		st := status.Convert(toStatus(s.log, "BulkCheckPermission", err))
		return &pb.BulkCheckError{Code: int32(st.Code()), Message: st.Message()}
	}
	resp := &pb.BulkCheckPermissionResponse{CheckedAt: s.zookie(rev)}
	for i, r := range results {
		out := &pb.BulkCheckResult{}
		resp.Results = append(resp.Results, out)
		if r.Err != nil {
			out.Error = itemError(queryError(core.Path{fmt.Sprintf("items[%d]", i)}, r.Err))
			continue
		}
		out.Permissionship = permissionshipToProto(r.Result.Permissionship)
		out.MissingContext = r.Result.Missing
	}
	return resp, nil
}
