package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

type relationshipService struct {
	pb.UnimplementedRelationshipServiceServer
	s *Server
}

// exportPageSize is how many relationships one ExportRelationships
// message carries.
const exportPageSize = 1000

func (svc *relationshipService) WriteRelationships(ctx context.Context, req *pb.WriteRelationshipsRequest) (*pb.WriteRelationshipsResponse, error) {
	s := svc.s
	updates := req.GetUpdates()
	muts := make([]storage.Mutation, len(updates))
	for i, u := range updates {
		field := fmt.Sprintf("updates[%d]", i)
		var op storage.Op
		switch u.GetOperation() {
		case pb.RelationshipUpdate_OPERATION_CREATE:
			op = storage.OpCreate
		case pb.RelationshipUpdate_OPERATION_TOUCH:
			op = storage.OpTouch
		case pb.RelationshipUpdate_OPERATION_DELETE:
			op = storage.OpDelete
		default:
			return nil, invalidField(field+".operation", "must be CREATE, TOUCH or DELETE")
		}
		r, err := relationshipFromProto(u.GetRelationship(), field+".relationship")
		if err != nil {
			return nil, err
		}
		muts[i] = storage.Mutation{Op: op, Relationship: r}
	}
	pre, err := preconditionsFromProto(req.GetPreconditions())
	if err != nil {
		return nil, err
	}

	rev, err := s.writer.WriteRelationships(ctx, storage.WriteRequest{
		Preconditions: pre,
		Mutations:     muts,
		Metadata:      writeMetadata(ctx, req.GetReason(), req.GetLabels()),
	}, "updates")
	if err != nil {
		return nil, err // the engine's error names the write
	}
	return &pb.WriteRelationshipsResponse{WrittenAt: s.zookie(rev)}, nil
}

func (svc *relationshipService) DeleteRelationships(ctx context.Context, req *pb.DeleteRelationshipsRequest) (*pb.DeleteRelationshipsResponse, error) {
	s := svc.s
	f, err := filterFromProto(req.GetFilter(), "filter")
	if err != nil {
		return nil, err
	}
	res, err := s.writer.DeleteRelationships(ctx, f, int(req.GetLimit()),
		writeMetadata(ctx, req.GetReason(), req.GetLabels()), core.Field("filter"))
	if err != nil {
		return nil, err
	}
	return &pb.DeleteRelationshipsResponse{WrittenAt: s.zookie(res.Revision), Deleted: uint64(res.Deleted), More: res.More}, nil
}

// openRead starts a resumable streaming read: it resolves the revision
// (the cursor's when there is a cursor, else the request's consistency),
// opens a reader there and sends the revision's zookie as a header, so even
// an empty stream reports it. after is the cursor's last relationship.
func (s *Server) openRead(stream grpc.ServerStream, c *pb.Consistency, cursor string) (rev storage.Revision, after *graph.Relationship, reader storage.Reader, err error) {
	ctx := stream.Context()
	if cursor != "" {
		if rev, after, err = s.revs.Zookies().RelationshipCursor(cursor); err != nil {
			err = invalidField("cursor", "%v", err)
		}
	} else {
		rev, err = s.resolve(ctx, c, "consistency")
	}
	if err != nil {
		return 0, nil, nil, err
	}
	if reader, err = s.engine.SnapshotReader(ctx, rev); err != nil {
		return 0, nil, nil, fmt.Errorf("read at revision %d: %w", rev, err)
	}
	return rev, after, reader, s.sendZookieHeader(stream, rev)
}

func (svc *relationshipService) ReadRelationships(req *pb.ReadRelationshipsRequest, stream pb.RelationshipService_ReadRelationshipsServer) error {
	s := svc.s
	ctx := stream.Context()
	f, err := filterFromProto(req.GetFilter(), "filter")
	if err != nil {
		return err
	}
	rev, after, reader, err := s.openRead(stream, req.GetConsistency(), req.GetCursor())
	if err != nil {
		return err
	}
	zookie := s.zookie(rev)
	for r, err := range reader.QueryRelationships(ctx, f, storage.QueryOptions{Limit: int(req.GetLimit()), After: after}) {
		if err != nil {
			return fmt.Errorf("read relationships: %w", err)
		}
		if err := stream.Send(&pb.ReadRelationshipsResponse{
			Relationship: relationshipToProto(r),
			ReadAt:       zookie,
			Cursor:       s.revs.Zookies().EncodeCursor(rev, r.String()),
		}); err != nil {
			return err
		}
	}
	return nil
}

func (svc *relationshipService) ExportRelationships(req *pb.ExportRelationshipsRequest, stream pb.RelationshipService_ExportRelationshipsServer) error {
	s := svc.s
	ctx := stream.Context()
	rev, after, reader, err := s.openRead(stream, req.GetConsistency(), req.GetCursor())
	if err != nil {
		return err
	}
	zookie := s.zookie(rev)
	page := make([]*pb.Relationship, 0, exportPageSize)
	var last graph.Relationship
	sent := false
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		err := stream.Send(&pb.ExportRelationshipsResponse{
			Relationships: page, ReadAt: zookie, Cursor: s.revs.Zookies().EncodeCursor(rev, last.String()),
		})
		page = make([]*pb.Relationship, 0, exportPageSize)
		sent = true
		return err
	}
	for r, err := range reader.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{After: after}) {
		if err != nil {
			return fmt.Errorf("export relationships: %w", err)
		}
		page = append(page, relationshipToProto(r))
		last = r
		if len(page) == exportPageSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if !sent {
		// An empty store still tells the client the revision it read.
		return stream.Send(&pb.ExportRelationshipsResponse{ReadAt: zookie})
	}
	return nil
}

func (svc *relationshipService) ImportRelationships(stream pb.RelationshipService_ImportRelationshipsServer) error {
	s := svc.s
	ctx := stream.Context()
	in := newIdleReceiver(stream.Recv, s.limits.StreamIdleTimeout)
	first, err := in.recv(ctx)
	if errors.Is(err, io.EOF) {
		return invalidField("relationships", "empty import stream")
	}
	if err != nil {
		return err
	}
	var last *pb.ImportRelationshipsResponse
	progress := func(committed int, rev storage.Revision) *pb.ImportRelationshipsResponse {
		resp := &pb.ImportRelationshipsResponse{Imported: uint64(committed)}
		if rev != 0 {
			resp.WrittenAt = s.zookie(rev)
		}
		return resp
	}
	imp, err := s.writer.NewImport(ctx, s.requests.ImportBatchSize, writeMetadata(ctx, first.GetReason(), first.GetLabels()),
		func(committed int, rev storage.Revision) error {
			last = progress(committed, rev)
			return stream.Send(last)
		})
	if err == nil {
		defer imp.Close()
		err = importStream(ctx, imp, first, in)
	}
	if err == nil {
		return nil
	}
	// The status carries how many relationships were committed, so a
	// client can resume after them.
	committed := 0
	if imp != nil {
		committed = imp.Committed()
	}
	st := status.Convert(toStatus(s.log, "ImportRelationships",
		fmt.Errorf("import stopped after %d relationships were committed: %w", committed, err)))
	if last == nil {
		last = progress(committed, 0)
	}
	if withCount, derr := st.WithDetails(last); derr == nil {
		st = withCount
	}
	return st.Err()
}

// importStream feeds an import stream, starting with first, to imp.
func importStream(ctx context.Context, imp *core.Import, first *pb.ImportRelationshipsRequest, in *idleReceiver[pb.ImportRelationshipsRequest]) error {
	for msg := first; ; {
		for _, p := range msg.GetRelationships() {
			field := fmt.Sprintf("relationships[%d]", imp.Position())
			r, err := relationshipFromProto(p, field)
			if err != nil {
				return err
			}
			if err := imp.Add(ctx, r, core.Field(field)); err != nil {
				return err
			}
		}
		var err error
		msg, err = in.recv(ctx)
		if errors.Is(err, io.EOF) {
			return imp.Finish(ctx)
		}
		if err != nil {
			return err
		}
	}
}
