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

	after, err := s.watchStart(ctx, req)
	if err != nil {
		return err
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
			Labels:        labelsToProto(ch.Metadata.Labels),
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

// watchStart returns the revision a Watch starts after: since's, the
// newest revision committed at or before start_time (through the audit
// log), or the head. A revision below the garbage-collection window is
// refused when the watch reads it, as for any old zookie.
func (s *Server) watchStart(ctx context.Context, req *pb.WatchRequest) (storage.Revision, error) {
	since, start := req.GetSince(), req.GetStartTime()
	switch {
	case since != nil && start != nil:
		return 0, invalidField("start_time", "give since or start_time, not both")
	case since != nil:
		return s.revs.DecodeZookie(since.GetToken(), core.Field("since"))
	case start != nil:
		if err := start.CheckValid(); err != nil {
			return 0, inField("start_time", err)
		}
		if err := s.auditEnabled(); err != nil {
			return 0, fmt.Errorf("start_time is found through the audit log: %w", err)
		}
		rev, err := s.engine.AuditRevisionAt(ctx, start.AsTime())
		if err != nil {
			return 0, fmt.Errorf("find the revision at start_time: %w", err)
		}
		return rev, nil
	}
	return s.revs.Head(ctx)
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
