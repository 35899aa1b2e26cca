package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// authzedWatch serves authzed.api.v1.WatchService over the engine's
// change feed, as pemba.v1's Watch does.
type authzedWatch struct {
	v1.UnimplementedWatchServiceServer
	s *Server
}

const authzedWatchService = "/authzed.api.v1.WatchService/"

func (svc *authzedWatch) Watch(req *v1.WatchRequest, stream grpc.ServerStreamingServer[v1.WatchResponse]) error {
	return svc.s.authzedStatus(authzedWatchService+"Watch", svc.watch(req, stream))
}

// watchKinds says which changes a Watch reports, and whether it sends
// checkpoints.
type watchKinds struct{ relationships, schema, checkpoints bool }

// watchKindsFromAuthzed reads optional_update_kinds: none means
// relationship updates only.
func watchKindsFromAuthzed(kinds []v1.WatchKind) (watchKinds, error) {
	if len(kinds) == 0 {
		return watchKinds{relationships: true}, nil
	}
	var k watchKinds
	for i, kind := range kinds {
		switch kind {
		case v1.WatchKind_WATCH_KIND_UNSPECIFIED, v1.WatchKind_WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES:
			k.relationships = true
		case v1.WatchKind_WATCH_KIND_INCLUDE_SCHEMA_UPDATES:
			k.schema = true
		case v1.WatchKind_WATCH_KIND_INCLUDE_CHECKPOINTS:
			k.checkpoints = true
		default:
			return k, invalidField(fmt.Sprintf("optional_update_kinds[%d]", i), "unknown watch kind %d", kind)
		}
	}
	return k, nil
}

func (svc *authzedWatch) watch(req *v1.WatchRequest, stream grpc.ServerStreamingServer[v1.WatchResponse]) error {
	s := svc.s
	// The stream ends when the client leaves or the server shuts down.
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stopWatch := context.AfterFunc(s.stopping, cancel)
	defer stopWatch()
	if err := s.sendServerVersion(ctx, stream.SetHeader); err != nil {
		return err
	}
	plan, err := s.authzedWatchPlan(ctx, req)
	if err != nil {
		return err
	}
	if err := stream.SendHeader(metadata.Pairs(ZookieHeader, s.revs.Zookies().Encode(plan.after))); err != nil {
		return err
	}
	feed := watchFeed(ctx, s.engine, plan.after)
	// Leaving cancels ctx; wait for the feed's goroutine to see it.
	defer func() {
		cancel()
		for range feed {
		}
	}()
	return s.streamAuthzedWatch(plan, feed, stream)
}

// authzedWatchPlan is a checked WatchRequest: where it starts, what it
// reports and which relationships it keeps.
type authzedWatchPlan struct {
	after   storage.Revision
	kinds   watchKinds
	types   map[string]bool  // nil: every type
	filters []storage.Filter // none: every relationship
}

// authzedWatchPlan checks req: the start cursor (none: the head), the
// kinds, and the object types or relationship filters, which must name
// what the schema at the start defines.
func (s *Server) authzedWatchPlan(ctx context.Context, req *v1.WatchRequest) (authzedWatchPlan, error) {
	var p authzedWatchPlan
	if len(req.GetOptionalObjectTypes()) > 0 && len(req.GetOptionalRelationshipFilters()) > 0 {
		return p, invalidField("optional_relationship_filters", "cannot be combined with optional_object_types")
	}
	var err error
	if p.kinds, err = watchKindsFromAuthzed(req.GetOptionalUpdateKinds()); err != nil {
		return p, err
	}
	p.filters = make([]storage.Filter, len(req.GetOptionalRelationshipFilters()))
	for i, f := range req.GetOptionalRelationshipFilters() {
		if p.filters[i], err = filterFromAuthzed(f, fmt.Sprintf("optional_relationship_filters[%d]", i)); err != nil {
			return p, err
		}
	}
	if tok := req.GetOptionalStartCursor().GetToken(); tok != "" {
		p.after, err = s.revs.DecodeZookie(tok, core.Field("optional_start_cursor"))
	} else {
		p.after, err = s.revs.Head(ctx)
	}
	if err != nil {
		return p, err
	}
	if p.types, err = s.authzedWatchTypes(ctx, req.GetOptionalObjectTypes(), p.after); err != nil {
		return p, err
	}
	return p, s.authzedWatchFilters(ctx, p.filters, p.after)
}

// streamAuthzedWatch sends the feed's revisions as plan keeps them and,
// if plan asks for them, a checkpoint every WatchCheckpointInterval, until
// the feed ends or a send fails.
func (s *Server) streamAuthzedWatch(plan authzedWatchPlan, feed <-chan feedItem, stream grpc.ServerStreamingServer[v1.WatchResponse]) error {
	var tick <-chan time.Time
	if plan.kinds.checkpoints {
		t := time.NewTicker(s.cfg.WatchCheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	// through is the newest revision the feed has handed over: every
	// change at or below it has been sent or filtered out, so a checkpoint
	// there promises nothing more will come at or below it.
	through := plan.after
	for {
		var resp *v1.WatchResponse
		select {
		case <-tick:
			resp = &v1.WatchResponse{ChangesThrough: s.zedToken(through), IsCheckpoint: true}
		case it, ok := <-feed:
			if !ok {
				if s.stopping.Err() != nil {
					return fmt.Errorf("server is shutting down: %w", storage.ErrClosed)
				}
				return nil
			}
			if it.err != nil {
				return fmt.Errorf("watch after revision %d: %w", plan.after, it.err)
			}
			through = it.change.Revision
			if resp = authzedWatchResponse(s, it.change, plan); resp == nil {
				continue
			}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// authzedWatchResponse is the response for one revision: the updates
// plan keeps, and whether the schema changed; nil when that leaves nothing
// to say.
func authzedWatchResponse(s *Server, ch storage.Change, plan authzedWatchPlan) *v1.WatchResponse {
	resp := &v1.WatchResponse{ChangesThrough: s.zedToken(ch.Revision), SchemaUpdated: plan.kinds.schema && ch.SchemaChanged}
	if plan.kinds.relationships {
		for _, rc := range ch.Relationships {
			if plan.keeps(rc.Relationship) {
				resp.Updates = append(resp.Updates, &v1.RelationshipUpdate{Operation: opToAuthzed(rc.Op), Relationship: relationshipToAuthzed(rc.Relationship)})
			}
		}
	}
	if len(resp.Updates) == 0 && !resp.SchemaUpdated {
		return nil
	}
	return resp
}

// keeps reports whether the plan's types and filters keep r.
func (p authzedWatchPlan) keeps(r graph.Relationship) bool {
	if p.types != nil && !p.types[r.Resource.Type] {
		return false
	}
	return len(p.filters) == 0 || slices.ContainsFunc(p.filters, func(f storage.Filter) bool { return filterMatches(f, r) })
}

// feedItem is one revision of the engine's change feed, or its error.
type feedItem struct {
	change storage.Change
	err    error
}

// watchFeed runs the engine's change feed after `after` in a goroutine
// and hands each revision over the returned channel, which is closed when
// the feed ends: after an error, or once ctx is done. The channel is
// unbuffered, so the feed reads no further ahead than the stream sends
// and a slow client holds at most one revision in memory.
func watchFeed(ctx context.Context, engine storage.Engine, after storage.Revision) <-chan feedItem {
	feed := make(chan feedItem)
	go func() {
		defer close(feed)
		for ch, err := range engine.Watch(ctx, after) {
			select {
			case feed <- feedItem{change: ch, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return feed
}

func opToAuthzed(op storage.Op) v1.RelationshipUpdate_Operation {
	switch op {
	case storage.OpCreate:
		return v1.RelationshipUpdate_OPERATION_CREATE
	case storage.OpTouch:
		return v1.RelationshipUpdate_OPERATION_TOUCH
	case storage.OpDelete:
		return v1.RelationshipUpdate_OPERATION_DELETE
	}
	return v1.RelationshipUpdate_OPERATION_UNSPECIFIED
}

// filterMatches reports whether r matches f, as a storage query would.
func filterMatches(f storage.Filter, r graph.Relationship) bool {
	if f.ResourceType != "" && r.Resource.Type != f.ResourceType {
		return false
	}
	if len(f.ResourceIDs) > 0 && !slices.Contains(f.ResourceIDs, r.Resource.ID) {
		return false
	}
	if !strings.HasPrefix(r.Resource.ID, f.ResourceIDPrefix) {
		return false
	}
	if f.Relation != "" && r.Relation != f.Relation {
		return false
	}
	if sf := f.Subject; sf != nil {
		if r.Subject.Object.Type != sf.Type {
			return false
		}
		if len(sf.IDs) > 0 && !slices.Contains(sf.IDs, r.Subject.Object.ID) {
			return false
		}
		if sf.Relation != nil && r.Subject.Relation != *sf.Relation {
			return false
		}
	}
	return true
}

// authzedWatchTypes checks optional_object_types against the schema at
// after, where the watch starts, and returns them as a set (nil: no
// filter): a typo would otherwise filter out every change, silently.
func (s *Server) authzedWatchTypes(ctx context.Context, types []string, after storage.Revision) (map[string]bool, error) {
	if len(types) == 0 {
		return nil, nil
	}
	snap, err := s.snapshot(ctx, after)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(types))
	for i, t := range types {
		field := fmt.Sprintf("optional_object_types[%d]", i)
		if err := graph.ValidateTypeName(t); err != nil {
			return nil, invalidField(field, "%v", err)
		}
		if snap.Schema.Definition(t) == nil {
			return nil, mismatch(invalidField(field, "type %q is not defined in the schema at the watch's start", t))
		}
		set[t] = true
	}
	return set, nil
}

// authzedWatchFilters checks that the types and relations the
// relationship filters name are defined in the schema at after, where
// the watch starts, for the same reason as authzedWatchTypes.
func (s *Server) authzedWatchFilters(ctx context.Context, filters []storage.Filter, after storage.Revision) error {
	if len(filters) == 0 {
		return nil
	}
	snap, err := s.snapshot(ctx, after)
	if err != nil {
		return err
	}
	for i, f := range filters {
		if err := validateFilterSchema(snap.Schema, f, fmt.Sprintf("optional_relationship_filters[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}
