package server

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
)

// authzedExperimental serves the RPCs of SpiceDB's experimental service
// that older clients use in place of the PermissionsService ones (bulk
// check, export and import), by translating to those. The others answer
// UNIMPLEMENTED.
type authzedExperimental struct {
	v1.UnimplementedExperimentalServiceServer
	perms *authzedPermissions
}

func (svc *authzedExperimental) BulkCheckPermission(ctx context.Context, req *v1.BulkCheckPermissionRequest) (*v1.BulkCheckPermissionResponse, error) {
	items := make([]*v1.CheckBulkPermissionsRequestItem, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = &v1.CheckBulkPermissionsRequestItem{
			Resource: it.GetResource(), Permission: it.GetPermission(), Subject: it.GetSubject(), Context: it.GetContext(),
		}
	}
	resp, err := svc.perms.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Consistency: req.GetConsistency(), Items: items})
	if err != nil {
		return nil, err
	}
	out := &v1.BulkCheckPermissionResponse{CheckedAt: resp.GetCheckedAt()}
	for i, p := range resp.GetPairs() {
		pair := &v1.BulkCheckPermissionPair{Request: req.GetItems()[i]}
		if e := p.GetError(); e != nil {
			pair.Response = &v1.BulkCheckPermissionPair_Error{Error: e}
		} else {
			pair.Response = &v1.BulkCheckPermissionPair_Item{Item: &v1.BulkCheckPermissionResponseItem{
				Permissionship: p.GetItem().GetPermissionship(), PartialCaveatInfo: p.GetItem().GetPartialCaveatInfo(),
			}}
		}
		out.Pairs = append(out.Pairs, pair)
	}
	return out, nil
}

func (svc *authzedExperimental) BulkExportRelationships(req *v1.BulkExportRelationshipsRequest, stream grpc.ServerStreamingServer[v1.BulkExportRelationshipsResponse]) error {
	return svc.perms.ExportBulkRelationships(&v1.ExportBulkRelationshipsRequest{
		Consistency: req.GetConsistency(), OptionalLimit: req.GetOptionalLimit(),
		OptionalCursor: req.GetOptionalCursor(), OptionalRelationshipFilter: req.GetOptionalRelationshipFilter(),
	}, bulkExportStream{stream})
}

// bulkExportStream sends ExportBulkRelationships pages as the experimental
// service's BulkExportRelationships messages (the same fields).
type bulkExportStream struct {
	grpc.ServerStreamingServer[v1.BulkExportRelationshipsResponse]
}

func (s bulkExportStream) Send(r *v1.ExportBulkRelationshipsResponse) error {
	return s.ServerStreamingServer.Send(&v1.BulkExportRelationshipsResponse{
		AfterResultCursor: r.GetAfterResultCursor(), Relationships: r.GetRelationships(),
	})
}

func (svc *authzedExperimental) BulkImportRelationships(stream grpc.ClientStreamingServer[v1.BulkImportRelationshipsRequest, v1.BulkImportRelationshipsResponse]) error {
	return svc.perms.ImportBulkRelationships(bulkImportStream{stream})
}

// bulkImportStream receives the experimental service's
// BulkImportRelationships messages as ImportBulkRelationships ones (the
// same fields) and answers with its response.
type bulkImportStream struct {
	grpc.ClientStreamingServer[v1.BulkImportRelationshipsRequest, v1.BulkImportRelationshipsResponse]
}

func (s bulkImportStream) Recv() (*v1.ImportBulkRelationshipsRequest, error) {
	m, err := s.ClientStreamingServer.Recv()
	if err != nil {
		return nil, err
	}
	return &v1.ImportBulkRelationshipsRequest{Relationships: m.GetRelationships()}, nil
}

func (s bulkImportStream) SendAndClose(r *v1.ImportBulkRelationshipsResponse) error {
	return s.ClientStreamingServer.SendAndClose(&v1.BulkImportRelationshipsResponse{NumLoaded: r.GetNumLoaded()})
}
