package server

import (
	"context"
	"time"

	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// explorerService serves pemba.v1.ExplorerService: who the caller is, and
// the object search behind the access explorer's type-ahead.
type explorerService struct {
	pb.UnimplementedExplorerServiceServer
	s *Server
}

func (svc *explorerService) WhoAmI(ctx context.Context, _ *pb.WhoAmIRequest) (*pb.WhoAmIResponse, error) {
	return &pb.WhoAmIResponse{Name: actorFrom(ctx), Version: svc.s.cfg.Version, Audit: !svc.s.cfg.DisableAudit}, nil
}

var objectRoles = map[pb.ObjectRole]core.ObjectRole{
	pb.ObjectRole_OBJECT_ROLE_UNSPECIFIED: core.AnyRole,
	pb.ObjectRole_OBJECT_ROLE_RESOURCE:    core.ResourceRole,
	pb.ObjectRole_OBJECT_ROLE_SUBJECT:     core.SubjectRole,
}

func (svc *explorerService) SearchObjects(ctx context.Context, req *pb.SearchObjectsRequest) (*pb.SearchObjectsResponse, error) {
	role, ok := objectRoles[req.GetRole()]
	if !ok {
		return nil, invalidField("role", "unknown role %d", req.GetRole())
	}
	rev, snap, err := svc.s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	q := core.SearchQuery{Type: req.GetType(), Prefix: req.GetPrefix(), After: req.GetAfter(), Role: role,
		Limit: int(min(req.GetLimit(), core.MaxSearchLimit+1)), Now: time.Now()}
	if err := q.Validate(snap.Schema); err != nil {
		return nil, err
	}
	objects, err := core.SearchObjects(ctx, snap.Reader, q)
	if err != nil {
		return nil, err
	}
	resp := &pb.SearchObjectsResponse{ReadAt: svc.s.zookie(rev)}
	for _, o := range objects {
		resp.Objects = append(resp.Objects, &pb.ObjectRef{Type: o.Type, Id: o.ID})
	}
	return resp, nil
}
