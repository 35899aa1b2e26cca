package server

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
)

// authzedExperimental serves the RPCs of SpiceDB's experimental service
// that older clients use in place of the PermissionsService and
// SchemaService ones (bulk check, export and import; schema reflection
// and diff), by translating to those. The relationship counters answer
// UNIMPLEMENTED.
type authzedExperimental struct {
	v1.UnimplementedExperimentalServiceServer
	perms  *authzedPermissions
	schema *authzedSchema
}

// ExperimentalReflectSchema is ReflectSchema under its experimental name.
func (svc *authzedExperimental) ExperimentalReflectSchema(ctx context.Context, req *v1.ExperimentalReflectSchemaRequest) (*v1.ExperimentalReflectSchemaResponse, error) {
	return viaStable(ctx, req, &v1.ReflectSchemaRequest{}, svc.schema.ReflectSchema, &v1.ExperimentalReflectSchemaResponse{})
}

// ExperimentalDiffSchema is DiffSchema under its experimental name.
func (svc *authzedExperimental) ExperimentalDiffSchema(ctx context.Context, req *v1.ExperimentalDiffSchemaRequest) (*v1.ExperimentalDiffSchemaResponse, error) {
	return viaStable(ctx, req, &v1.DiffSchemaRequest{}, svc.schema.DiffSchema, &v1.ExperimentalDiffSchemaResponse{})
}

// ExperimentalComputablePermissions is ComputablePermissions under its
// experimental name.
func (svc *authzedExperimental) ExperimentalComputablePermissions(ctx context.Context, req *v1.ExperimentalComputablePermissionsRequest) (*v1.ExperimentalComputablePermissionsResponse, error) {
	return viaStable(ctx, req, &v1.ComputablePermissionsRequest{}, svc.schema.ComputablePermissions, &v1.ExperimentalComputablePermissionsResponse{})
}

// ExperimentalDependentRelations is DependentRelations under its
// experimental name.
func (svc *authzedExperimental) ExperimentalDependentRelations(ctx context.Context, req *v1.ExperimentalDependentRelationsRequest) (*v1.ExperimentalDependentRelationsResponse, error) {
	return viaStable(ctx, req, &v1.DependentRelationsRequest{}, svc.schema.DependentRelations, &v1.ExperimentalDependentRelationsResponse{})
}

// viaStable serves an experimental RPC by its stable twin: the request
// and the response cross between the two message families by their JSON
// form, which names every field alike (the experimental messages are the
// stable ones under Exp* type names). A field only one side has is
// dropped, not refused.
func viaStable[ExpReq, Req, Resp, ExpResp proto.Message](ctx context.Context, req ExpReq, stable Req,
	call func(context.Context, Req) (Resp, error), out ExpResp) (ExpResp, error) {
	var zero ExpResp
	if err := convertMessage(req, stable); err != nil {
		return zero, status.Errorf(codes.InvalidArgument, "%v", err)
	}
	resp, err := call(ctx, stable)
	if err != nil {
		return zero, err
	}
	if err := convertMessage(resp, out); err != nil {
		return zero, status.Errorf(codes.Internal, "%v", err)
	}
	return out, nil
}

// convertMessage copies from into to by field name.
func convertMessage(from, to proto.Message) error {
	b, err := protojson.Marshal(from)
	if err != nil {
		return fmt.Errorf("encode %s: %w", from.ProtoReflect().Descriptor().Name(), err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, to); err != nil {
		return fmt.Errorf("decode %s: %w", to.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
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
