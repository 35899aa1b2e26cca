package server

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc/metadata"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

type watchService struct {
	pb.UnimplementedWatchServiceServer
	s *Server
}

func (svc *watchService) Watch(req *pb.WatchRequest, stream pb.WatchService_WatchServer) error {
	s := svc.s
	// The stream ends when the client leaves or the server shuts down.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stopWatch := context.AfterFunc(s.stopping, cancel)
	defer stopWatch()

	var after storage.Revision
	if req.GetSince() != nil {
		rev, err := s.revs.decode(req.GetSince(), "since")
		if err != nil {
			return err
		}
		after = rev
	} else {
		head, err := s.revs.head(ctx)
		if err != nil {
			return err
		}
		after = head
	}
	// The header tells the client the revision it watches from, at once.
	if err := stream.SendHeader(metadata.Pairs(ZookieHeader, s.revs.zookies.Encode(after))); err != nil {
		return err
	}
	types := req.GetResourceTypes()
	for ch, err := range s.engine.Watch(ctx, after) {
		if err != nil {
			return fmt.Errorf("watch after revision %d: %w", after, err)
		}
		resp := &pb.WatchResponse{
			Revision:      s.revs.zookie(ch.Revision),
			CommittedAt:   timestamp(ch.CommittedAt),
			Actor:         ch.Metadata.Actor,
			Reason:        ch.Metadata.Reason,
			SchemaChanged: ch.SchemaChanged,
		}
		for _, rc := range ch.Relationships {
			if len(types) > 0 && !slices.Contains(types, rc.Relationship.Resource.Type) {
				continue
			}
			resp.Updates = append(resp.Updates, &pb.RelationshipUpdate{Operation: opToProto(rc.Op), Relationship: relationshipToProto(rc.Relationship)})
		}
		if len(resp.Updates) == 0 && !ch.SchemaChanged && len(ch.Relationships) > 0 {
			continue // every change was filtered out
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	if s.stopping.Err() != nil {
		return fmt.Errorf("server is shutting down: %w", storage.ErrClosed)
	}
	return nil
}
