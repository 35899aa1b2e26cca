package server

import (
	"context"
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// authzedSchema serves SpiceDB's authzed.api.v1.SchemaService over the
// same schema store as pemba.v1. RPCs not listed here answer
// UNIMPLEMENTED.
type authzedSchema struct {
	v1.UnimplementedSchemaServiceServer
	s *Server
}

const authzedSchemaService = "/authzed.api.v1.SchemaService/"

func (svc *authzedSchema) ReadSchema(ctx context.Context, req *v1.ReadSchemaRequest) (*v1.ReadSchemaResponse, error) {
	resp, err := svc.readSchema(ctx)
	return resp, svc.s.authzedStatus(authzedSchemaService+"ReadSchema", err)
}

// readSchema reads the newest schema, as SpiceDB does: ReadSchema takes
// no consistency.
func (svc *authzedSchema) readSchema(ctx context.Context) (*v1.ReadSchemaResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	rev, err := s.resolveAuthzed(ctx, &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}})
	if err != nil {
		return nil, err
	}
	reader, err := s.engine.SnapshotReader(ctx, rev)
	if err != nil {
		return nil, fmt.Errorf("read at revision %d: %w", rev, err)
	}
	stored, err := reader.ReadSchema(ctx)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	if stored.Text == "" {
		return nil, status.Error(codes.NotFound, "no schema has been written")
	}
	return &v1.ReadSchemaResponse{SchemaText: stored.Text, ReadAt: s.zedToken(rev)}, nil
}

func (svc *authzedSchema) WriteSchema(ctx context.Context, req *v1.WriteSchemaRequest) (*v1.WriteSchemaResponse, error) {
	resp, err := svc.writeSchema(ctx, req)
	return resp, svc.s.authzedStatus(authzedSchemaService+"WriteSchema", err)
}

func (svc *authzedSchema) writeSchema(ctx context.Context, req *v1.WriteSchemaRequest) (*v1.WriteSchemaResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	next, err := compileRequestSchema(req.GetSchema())
	if err != nil {
		return nil, err
	}
	rev, err := s.writer.WriteSchema(ctx, req.GetSchema(), next, writeMetadata(ctx, "", nil))
	if err != nil {
		return nil, err
	}
	return &v1.WriteSchemaResponse{WrittenAt: s.zedToken(rev)}, nil
}
