package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

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
	if len(updates) == 0 {
		return nil, invalidField("updates", "empty: a write needs at least one update")
	}
	if len(updates) > s.limits.MaxWriteRelationships {
		return nil, invalidField("updates", "%d updates exceed the limit of %d per write; use ImportRelationships (pemba import) for bulk loads",
			len(updates), s.limits.MaxWriteRelationships)
	}
	muts := make([]storage.Mutation, len(updates))
	seen := make(map[graph.Key]int, len(updates))
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
		if j, dup := seen[r.Key()]; dup {
			return nil, invalidField(field+".relationship", "%s also appears in updates[%d]; a relationship may be updated once per write", r.Key(), j)
		}
		seen[r.Key()] = i
		muts[i] = storage.Mutation{Op: op, Relationship: r}
	}
	pre, err := preconditionsFromProto(req.GetPreconditions())
	if err != nil {
		return nil, err
	}

	rev, err := s.writeRelationships(ctx, storage.WriteRequest{
		Preconditions: pre,
		Mutations:     muts,
		Metadata:      storage.WriteMetadata{Actor: actorFrom(ctx), Reason: req.GetReason()},
	}, func(i int) string { return fmt.Sprintf("updates[%d].relationship", i) })
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
	if f.ResourceType == "" && f.Subject == nil {
		return nil, invalidField("filter", "give at least resource_type or subject; an empty filter would delete everything")
	}
	res, err := s.engine.DeleteRelationships(ctx, f, int(req.GetLimit()),
		storage.WriteMetadata{Actor: actorFrom(ctx), Reason: req.GetReason()})
	if err != nil {
		return nil, fmt.Errorf("delete relationships: %w", err)
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
	imp := &importer{s: s, stream: stream, meta: storage.WriteMetadata{Actor: actorFrom(ctx), Reason: first.GetReason()}}
	err = imp.run(ctx, first, in)
	if err == nil {
		return nil
	}
	// The status carries how many relationships were committed, so a
	// client can resume after them.
	st := status.Convert(toStatus(s.log, "ImportRelationships",
		fmt.Errorf("import stopped after %d relationships were committed: %w", imp.committed, err)))
	if withCount, derr := st.WithDetails(imp.progress()); derr == nil {
		st = withCount
	}
	return st.Err()
}

// importer commits an import stream batch by batch. Each batch is
// validated against the head schema and committed guarded by it (see
// writes.go); after each commit the running count goes to the client.
type importer struct {
	s      *Server
	stream pb.RelationshipService_ImportRelationshipsServer
	meta   storage.WriteMetadata

	batch     []graph.Relationship
	sch       core.VersionedSchema
	committed int // relationships of the stream committed so far
	last      storage.Revision
}

func (imp *importer) progress() *pb.ImportRelationshipsResponse {
	resp := &pb.ImportRelationshipsResponse{Imported: uint64(imp.committed)}
	if imp.last != 0 {
		resp.WrittenAt = imp.s.zookie(imp.last)
	}
	return resp
}

// run receives, validates and commits the stream starting with first.
func (imp *importer) run(ctx context.Context, first *pb.ImportRelationshipsRequest, in *idleReceiver[pb.ImportRelationshipsRequest]) error {
	if err := imp.loadSchema(ctx); err != nil {
		return err
	}
	size := imp.s.limits.ImportBatchSize
	imp.batch = make([]graph.Relationship, 0, min(size, 1<<14))
	for msg := first; ; {
		for _, p := range msg.GetRelationships() {
			field := fmt.Sprintf("relationships[%d]", imp.committed+len(imp.batch))
			r, err := relationshipFromProto(p, field)
			if err == nil {
				err = validateAgainstSchema(imp.sch.Schema, r, field)
			}
			if err != nil {
				return plainInvalid(err)
			}
			imp.batch = append(imp.batch, r)
			if len(imp.batch) >= size {
				if err := imp.commit(ctx); err != nil {
					return err
				}
			}
		}
		var err error
		msg, err = in.recv(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(imp.batch) > 0 || imp.last == 0 {
		return imp.commit(ctx)
	}
	return nil
}

// loadSchema reads the head schema the next batches are validated against.
func (imp *importer) loadSchema(ctx context.Context) error {
	_, sch, err := imp.s.headSchema(ctx)
	if err != nil {
		return err
	}
	if sch.Schema == nil {
		return core.ErrNoSchema
	}
	imp.sch = sch
	return nil
}

// commit writes the buffered batch in one revision, guarded by the schema
// it was validated against (validating it again when a schema write got
// in between), and reports the running count to the client. An empty
// batch only reports: the stream carried no relationships.
func (imp *importer) commit(ctx context.Context) error {
	if len(imp.batch) == 0 {
		head, err := imp.s.revs.Head(ctx)
		if err != nil {
			return err
		}
		imp.last = head
		return imp.stream.Send(imp.progress())
	}
	for attempt := 1; ; attempt++ {
		res, err := imp.s.engine.Import(ctx, relationshipsOf(imp.batch), storage.ImportOptions{
			BatchSize: len(imp.batch), Metadata: imp.meta, SchemaRevision: imp.sch.WrittenAt,
		})
		if err == nil {
			imp.committed += res.Imported
			if n := len(res.Revisions); n > 0 {
				imp.last = res.Revisions[n-1]
			}
			imp.batch = imp.batch[:0]
			return imp.stream.Send(imp.progress())
		}
		if !errors.Is(err, storage.ErrSchemaChanged) || attempt == maxSchemaRetries {
			return err
		}
		if err := pause(ctx, attempt); err != nil {
			return err
		}
		if err := imp.loadSchema(ctx); err != nil {
			return err
		}
		for i, r := range imp.batch {
			if err := validateAgainstSchema(imp.sch.Schema, r, fmt.Sprintf("relationships[%d]", imp.committed+i)); err != nil {
				return plainInvalid(err)
			}
		}
	}
}

// relationshipsOf yields rs as an import source.
func relationshipsOf(rs []graph.Relationship) iter.Seq2[graph.Relationship, error] {
	return func(yield func(graph.Relationship, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}
