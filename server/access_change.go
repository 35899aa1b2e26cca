package server

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/access"
	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

// TruncatedTrailer is the trailer of an ExpiringAccess stream whose
// answer one of the server's bounds cut short; its value says which
// bound and how to narrow the question.
const TruncatedTrailer = "pemba-truncated"

// DiffFromHeader and DiffToHeader are the response headers of AccessDiff
// that carry the zookies of the two revisions compared.
const (
	DiffFromHeader = "pemba-diff-from"
	DiffToHeader   = "pemba-diff-to"
)

// accessSource is what package access reads through this server.
func (s *Server) accessSource() access.Source {
	return access.Source{Engine: s.engine, Checker: s.checker, Snapshot: s.snapshot, Audit: !s.cfg.DisableAudit}
}

func (svc *accessService) ExpiringAccess(req *pb.ExpiringAccessRequest, stream pb.AccessService_ExpiringAccessServer) error {
	s := svc.s
	ctx := stream.Context()
	q := access.ExpiringQuery{ResourceType: req.GetResourceType(), RelationshipsOnly: req.GetRelationshipsOnly(), Limit: int(req.GetLimit())}
	if w := req.GetWithin(); w != nil {
		if err := w.CheckValid(); err != nil {
			return inField("within", err)
		}
		q.Within = w.AsDuration()
	}
	if req.GetSubject() != nil {
		sub, err := subjectFromProto(req.GetSubject(), "subject")
		if err != nil {
			return err
		}
		q.Subject = &sub
	}
	var rev storage.Revision
	var err error
	if c := req.GetCursor(); c != "" {
		if rev, q.After, err = s.revs.Zookies().DecodeCursor(c); err != nil {
			return inField("cursor", err)
		}
	} else if rev, err = s.resolve(ctx, req.GetConsistency(), "consistency"); err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	ans, err := access.Expiring(ctx, s.accessSource(), snap, q)
	if err != nil {
		return accessError(err)
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	if ans.Truncated != "" {
		stream.SetTrailer(metadata.Pairs(TruncatedTrailer, ans.Truncated))
	}
	zookie := s.zookie(rev)
	for _, it := range ans.Items {
		resp := &pb.ExpiringAccessResponse{ReadAt: zookie, Cursor: s.revs.Zookies().EncodeCursor(rev, it.Position)}
		if it.Relationship != nil {
			resp.Item = &pb.ExpiringAccessResponse_Relationship{Relationship: relationshipToProto(*it.Relationship)}
		} else {
			resp.Item = &pb.ExpiringAccessResponse_Access{Access: accessToProto(*it.Access)}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func (svc *accessService) AccessDiff(req *pb.AccessDiffRequest, stream pb.AccessService_AccessDiffServer) error {
	s := svc.s
	ctx := stream.Context()
	sub, err := subjectFromProto(req.GetSubject(), "subject")
	if err != nil {
		return err
	}
	q := access.DiffQuery{Subject: sub, ResourceTypes: req.GetResourceTypes(), Permissions: req.GetPermissions(),
		Context: contextFromProto(req.GetContext())}
	if q.From, err = s.diffEnd(req.GetFromTime(), req.GetFromZookie(), "from_time", "from_zookie"); err != nil {
		return err
	}
	if q.To, err = s.diffEnd(req.GetToTime(), req.GetToZookie(), "to_time", "to_zookie"); err != nil {
		return err
	}
	ans, err := access.Diff(ctx, s.accessSource(), q)
	if err != nil {
		return accessError(err)
	}
	from, to := s.zookie(ans.From), s.zookie(ans.To)
	// The header names the revisions compared, even for an empty answer.
	if err := stream.SendHeader(metadata.Pairs(DiffFromHeader, from.GetToken(), DiffToHeader, to.GetToken())); err != nil {
		return err
	}
	for _, d := range ans.Rows {
		resp := &pb.AccessDiffResponse{Change: pb.AccessDiffResponse_CHANGE_GAINED, Access: accessToProto(d.Access), From: from, To: to}
		if d.Lost {
			resp.Change = pb.AccessDiffResponse_CHANGE_LOST
		}
		for _, c := range d.Causes {
			resp.Causes = append(resp.Causes, s.changeToProto(c))
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

// diffEnd decodes one end of a diff: a time or a zookie (the zero
// DiffEnd when neither is set).
func (s *Server) diffEnd(t *timestamppb.Timestamp, z *pb.Zookie, timeField, zookieField string) (access.DiffEnd, error) {
	switch {
	case t != nil:
		if err := t.CheckValid(); err != nil {
			return access.DiffEnd{}, inField(timeField, err)
		}
		return access.DiffEnd{Time: t.AsTime(), Field: timeField}, nil
	case z != nil:
		rev, err := s.revs.DecodeZookie(z.GetToken(), core.Field(zookieField))
		if err != nil {
			return access.DiffEnd{}, err
		}
		return access.DiffEnd{Revision: rev, ByRevision: true, Field: zookieField}, nil
	}
	return access.DiffEnd{}, nil
}

var changeOps = map[access.Operation]pb.RelationshipChange_Operation{
	access.Written: pb.RelationshipChange_OPERATION_WRITTEN,
	access.Deleted: pb.RelationshipChange_OPERATION_DELETED,
	access.Expired: pb.RelationshipChange_OPERATION_EXPIRED,
}

// changeToProto converts a cause of a diff row.
func (s *Server) changeToProto(c access.Change) *pb.RelationshipChange {
	out := &pb.RelationshipChange{Operation: changeOps[c.Op], Relationship: relationshipToProto(c.Relationship)}
	if c.Revision != 0 {
		out.Revision = s.zookie(c.Revision)
	}
	if c.Audit != nil {
		out.Audit = s.auditEventToProto(*c.Audit)
	}
	return out
}

// accessError maps the errors of the access analyses: a time the server
// cannot map to a revision without its audit log is FAILED_PRECONDITION
// (as for Watch's start_time); a bound exceeded
// (package access's, or the engine's on the objects one analysis holds)
// is RESOURCE_EXHAUSTED; the rest pass to the common mapping, the
// engine's request errors naming their field.
func accessError(err error) error {
	switch {
	case errors.Is(err, access.ErrNoAuditLog):
		return status.Error(codes.FailedPrecondition, wireMessage(err))
	case errors.Is(err, access.ErrTooLarge):
		return status.Error(codes.ResourceExhausted, wireMessage(err))
	case errors.Is(err, check.ErrAccessTooLarge):
		return status.Errorf(codes.ResourceExhausted, "%s: the server's bound on one access analysis (--max-access-objects); narrow the question (permissions, types)", wireMessage(err))
	}
	return queryError(nil, err)
}
