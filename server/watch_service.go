package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/metadata"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
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
		rev, err := s.revs.DecodeZookie(req.GetSince().GetToken(), core.Field("since"))
		if err != nil {
			return err
		}
		after = rev
	} else {
		head, err := s.revs.Head(ctx)
		if err != nil {
			return err
		}
		after = head
	}
	types, err := s.watchTypes(ctx, req.GetResourceTypes(), after)
	if err != nil {
		return err
	}
	// The header tells the client the revision it watches from, at once.
	if err := stream.SendHeader(metadata.Pairs(ZookieHeader, s.revs.Zookies().Encode(after))); err != nil {
		return err
	}
	for ch, err := range s.engine.Watch(ctx, after) {
		if err != nil {
			return fmt.Errorf("watch after revision %d: %w", after, err)
		}
		resp := &pb.WatchResponse{
			Revision:      s.zookie(ch.Revision),
			CommittedAt:   timestamp(ch.CommittedAt),
			Actor:         ch.Metadata.Actor,
			Reason:        ch.Metadata.Reason,
			SchemaChanged: ch.SchemaChanged,
		}
		for _, rc := range ch.Relationships {
			if types != nil && !types[rc.Relationship.Resource.Type] {
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

// watchTypes checks a Watch's resource type filter and returns it as a set
// (nil: no filter). Each type must be a well-formed type name defined in
// the schema at revision after, where the watch starts: a typo would
// otherwise filter out every change, silently.
func (s *Server) watchTypes(ctx context.Context, types []string, after storage.Revision) (map[string]bool, error) {
	if len(types) == 0 {
		return nil, nil
	}
	for i, t := range types {
		if err := graph.ValidateTypeName(t); err != nil {
			return nil, invalidField(fmt.Sprintf("resource_types[%d]", i), "%v", err)
		}
	}
	snap, err := s.snapshot(ctx, after)
	if err != nil && !errors.Is(err, core.ErrNoSchema) {
		return nil, err
	}
	set := make(map[string]bool, len(types))
	for i, t := range types {
		if snap.Schema == nil || snap.Schema.Definition(t) == nil {
			return nil, invalidField(fmt.Sprintf("resource_types[%d]", i),
				"type %q is not defined in the schema at revision %d, where the watch starts", t, after)
		}
		set[t] = true
	}
	return set, nil
}
