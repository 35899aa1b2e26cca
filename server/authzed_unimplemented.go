package server

import (
	"context"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
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

func (svc *authzedSchema) ReflectSchema(context.Context, *v1.ReflectSchemaRequest) (*v1.ReflectSchemaResponse, error) {
	return nil, notYet("SchemaService.ReflectSchema", "")
}

func (svc *authzedSchema) ComputablePermissions(context.Context, *v1.ComputablePermissionsRequest) (*v1.ComputablePermissionsResponse, error) {
	return nil, notYet("SchemaService.ComputablePermissions", "")
}

func (svc *authzedSchema) DependentRelations(context.Context, *v1.DependentRelationsRequest) (*v1.DependentRelationsResponse, error) {
	return nil, notYet("SchemaService.DependentRelations", "")
}

func (svc *authzedSchema) DiffSchema(context.Context, *v1.DiffSchemaRequest) (*v1.DiffSchemaResponse, error) {
	return nil, notYet("SchemaService.DiffSchema", "pemba.v1.SchemaService.DiffSchema")
}
