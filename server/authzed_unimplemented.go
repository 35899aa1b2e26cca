package server

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The authzed.api.v1 RPCs this server does not serve yet. Each answers
// UNIMPLEMENTED naming the RPC and, where there is one, the pemba.v1 RPC
// that does the same job. RPCs not listed here (the experimental service)
// answer with the generated stubs' message.

// notYet is the error of an authzed.api.v1 RPC this server does not serve.
func notYet(method, instead string) error {
	msg := "authzed.api.v1." + method + " is not supported by this server yet"
	if instead != "" {
		msg += "; use " + instead
	}
	return status.Error(codes.Unimplemented, msg)
}

func (svc *authzedPermissions) ExpandPermissionTree(context.Context, *v1.ExpandPermissionTreeRequest) (*v1.ExpandPermissionTreeResponse, error) {
	return nil, notYet("PermissionsService.ExpandPermissionTree", "pemba.v1.PermissionService.ExpandPermission")
}

func (svc *authzedPermissions) ImportBulkRelationships(grpc.ClientStreamingServer[v1.ImportBulkRelationshipsRequest, v1.ImportBulkRelationshipsResponse]) error {
	return notYet("PermissionsService.ImportBulkRelationships", "pemba.v1.RelationshipService.ImportRelationships (pemba import)")
}
