package server

import (
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

func (svc *authzedPermissions) ExportBulkRelationships(req *v1.ExportBulkRelationshipsRequest, stream grpc.ServerStreamingServer[v1.ExportBulkRelationshipsResponse]) error {
	return svc.s.authzedStatus(authzedPermissionsService+"ExportBulkRelationships", svc.exportBulkRelationships(req, stream))
}

// exportBulkRelationships streams every relationship (or those matching
// the optional filter) at one revision, in pages of at most
// exportPageSize; each page carries the cursor that resumes after it.
func (svc *authzedPermissions) exportBulkRelationships(req *v1.ExportBulkRelationshipsRequest, stream grpc.ServerStreamingServer[v1.ExportBulkRelationshipsResponse]) error {
	s := svc.s
	ctx := stream.Context()
	if err := s.sendServerVersion(ctx, stream.SetHeader); err != nil {
		return err
	}
	var f storage.Filter
	if pf := req.GetOptionalRelationshipFilter(); pf != nil {
		var err error
		if f, err = filterFromAuthzed(pf, "optional_relationship_filter"); err != nil {
			return err
		}
	}
	pageSize := exportPageSize
	if n := int(req.GetOptionalLimit()); n > 0 && n < pageSize {
		pageSize = n
	}
	var rev storage.Revision
	var after *graph.Relationship
	var err error
	if c := req.GetOptionalCursor().GetToken(); c != "" {
		if rev, after, err = s.revs.Zookies().RelationshipCursor(c); err != nil {
			return invalidField("optional_cursor", "%v", err)
		}
	} else if rev, err = s.resolveAuthzed(ctx, req.GetConsistency()); err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	if err := validateFilterSchema(snap.Schema, f, "optional_relationship_filter"); err != nil {
		return err
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	page := make([]*v1.Relationship, 0, pageSize)
	var last graph.Relationship
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		err := stream.Send(&v1.ExportBulkRelationshipsResponse{
			AfterResultCursor: &v1.Cursor{Token: s.revs.Zookies().EncodeCursor(rev, last.String())},
			Relationships:     page,
		})
		page = make([]*v1.Relationship, 0, pageSize)
		return err
	}
	for r, err := range snap.Reader.QueryRelationships(ctx, f, storage.QueryOptions{After: after}) {
		if err != nil {
			return fmt.Errorf("export relationships: %w", err)
		}
		page = append(page, relationshipToAuthzed(r))
		last = r
		if len(page) == pageSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
