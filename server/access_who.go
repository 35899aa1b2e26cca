package server

import (
	"context"
	"time"

	"google.golang.org/grpc"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

func (svc *accessService) WhoCanAccess(req *pb.WhoCanAccessRequest, stream pb.AccessService_WhoCanAccessServer) error {
	s := svc.s
	ctx := stream.Context()
	res, err := objectFromProto(req.GetResource(), "resource")
	if err != nil {
		return err
	}
	rev, after, err := s.accessCursor(ctx, req.GetCursor(), req.GetConsistency())
	if err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	creq := check.WhoRequest{Resource: res, Permissions: req.GetPermissions(), SubjectTypes: req.GetSubjectTypes(),
		Context: contextFromProto(req.GetContext()), Now: time.Now(), After: after}
	return s.streamAccess(stream, rev, int(req.GetLimit()), func(yield func(check.AccessRow) bool) error {
		return s.checker.WhoCanAccess(ctx, snap, creq, yield)
	})
}

func (svc *accessService) WhatCanAccess(req *pb.WhatCanAccessRequest, stream pb.AccessService_WhatCanAccessServer) error {
	s := svc.s
	ctx := stream.Context()
	sub, err := subjectFromProto(req.GetSubject(), "subject")
	if err != nil {
		return err
	}
	rev, after, err := s.accessCursor(ctx, req.GetCursor(), req.GetConsistency())
	if err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	creq := check.WhatRequest{Subject: sub, ResourceTypes: req.GetResourceTypes(), Permissions: req.GetPermissions(),
		Context: contextFromProto(req.GetContext()), Now: time.Now(), After: after}
	return s.streamAccess(stream, rev, int(req.GetLimit()), func(yield func(check.AccessRow) bool) error {
		return s.checker.WhatCanAccess(ctx, snap, creq, yield)
	})
}

// accessCursor returns the revision an access query reads and the row it
// resumes after: a cursor's (the consistency is then ignored: a cursor
// pins its revision), or the consistency's and nil.
func (s *Server) accessCursor(ctx context.Context, cursor string, c *pb.Consistency) (storage.Revision, *check.AccessCursor, error) {
	if cursor == "" {
		rev, err := s.resolve(ctx, c, "consistency")
		return rev, nil, err
	}
	rev, pos, err := s.revs.Zookies().DecodeCursor(cursor)
	if err != nil {
		return 0, nil, inField("cursor", err)
	}
	after, err := check.DecodeAccessCursor(pos)
	if err != nil || after.Revision != rev {
		return 0, nil, inField("cursor", core.ErrMalformedCursor)
	}
	return rev, &after, nil
}

// streamAccess sends the rows query yields, at most limit of them (0: no
// limit), each with the revision read and the cursor that resumes after
// it. Each row is sent before the next is computed, so the server holds
// one at a time.
func (s *Server) streamAccess(stream grpc.ServerStream, rev storage.Revision, limit int, query func(yield func(check.AccessRow) bool) error) error {
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	zookie := s.zookie(rev)
	var sendErr error
	n := 0
	err := query(func(row check.AccessRow) bool {
		resp := &pb.AccessResponse{Access: accessToProto(row), ReadAt: zookie, Cursor: s.revs.Zookies().EncodeCursor(rev, row.Cursor.Encode())}
		sendErr = stream.SendMsg(resp)
		n++
		return sendErr == nil && (limit == 0 || n < limit)
	})
	if sendErr != nil {
		return sendErr
	}
	return accessError(err)
}

// accessToProto converts an access row.
func accessToProto(row check.AccessRow) *pb.Access {
	out := &pb.Access{
		Resource:           objectToProto(row.Resource),
		Permission:         row.Permission,
		Subject:            subjectToProto(row.Subject),
		ExcludedSubjectIds: row.Excluded,
		Permissionship:     permissionshipToProto(row.Permissionship),
		MissingContext:     row.Missing,
		Path:               pathToProto(row.Path, nil),
		EndsAt:             timestamp(row.EndsAt),
	}
	for _, h := range row.Holdings {
		// check.Holding mirrors pb.Holding value for value.
		out.Holdings = append(out.Holdings, pb.Holding(h))
	}
	return out
}
