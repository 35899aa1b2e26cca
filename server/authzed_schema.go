package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// authzedSchema serves SpiceDB's authzed.api.v1.SchemaService over the
// same schema store as pemba.v1: reading and writing, and reflection
// (structure, diffs and dependencies) computed by package schema.
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

func (svc *authzedSchema) ReflectSchema(ctx context.Context, req *v1.ReflectSchemaRequest) (*v1.ReflectSchemaResponse, error) {
	resp, err := svc.reflectSchema(ctx, req)
	return resp, svc.s.authzedStatus(authzedSchemaService+"ReflectSchema", err)
}

// reflectSchema answers with the schema at the request's consistency; with
// no schema written, an empty one.
func (svc *authzedSchema) reflectSchema(ctx context.Context, req *v1.ReflectSchemaRequest) (*v1.ReflectSchemaResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	filter, err := reflectFilterFromAuthzed(req.GetOptionalFilters())
	if err != nil {
		return nil, err
	}
	rev, sch, err := svc.schemaAt(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	resp := reflectSchema(sch, filter)
	resp.ReadAt = s.zedToken(rev)
	return resp, nil
}

// schemaAt resolves a request's consistency and returns the schema in
// force there, nil when none has been written.
func (svc *authzedSchema) schemaAt(ctx context.Context, c *v1.Consistency) (storage.Revision, *schema.Schema, error) {
	rev, snap, err := svc.s.snapshotAuthzed(ctx, c)
	if errors.Is(err, core.ErrNoSchema) {
		return rev, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return rev, snap.Schema, nil
}

func (svc *authzedSchema) DiffSchema(ctx context.Context, req *v1.DiffSchemaRequest) (*v1.DiffSchemaResponse, error) {
	resp, err := svc.diffSchema(ctx, req)
	return resp, svc.s.authzedStatus(authzedSchemaService+"DiffSchema", err)
}

// diffSchema compares the stored schema (none: empty) with
// comparison_schema: an addition is what comparison_schema has and the
// stored schema lacks.
func (svc *authzedSchema) diffSchema(ctx context.Context, req *v1.DiffSchemaRequest) (*v1.DiffSchemaResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	text := req.GetComparisonSchema()
	if strings.TrimSpace(text) == "" {
		return nil, invalidField("comparison_schema", "empty")
	}
	next, err := schema.Compile("comparison_schema", text)
	if err != nil {
		return nil, invalidField("comparison_schema", "%v", err)
	}
	rev, prev, err := svc.schemaAt(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	return &v1.DiffSchemaResponse{Diffs: reflectDiff(prev, next), ReadAt: s.zedToken(rev)}, nil
}

func (svc *authzedSchema) ComputablePermissions(ctx context.Context, req *v1.ComputablePermissionsRequest) (*v1.ComputablePermissionsResponse, error) {
	resp, err := svc.computablePermissions(ctx, req)
	return resp, svc.s.authzedStatus(authzedSchemaService+"ComputablePermissions", err)
}

// computablePermissions lists what relation_name (empty: the definition's
// objects themselves) feeds, as schema.ComputablePermissions finds it,
// on the definitions optional_definition_name_filter prefixes.
func (svc *authzedSchema) computablePermissions(ctx context.Context, req *v1.ComputablePermissionsRequest) (*v1.ComputablePermissionsResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	rev, sch, err := svc.reflectionTarget(ctx, req.GetConsistency(), req.GetDefinitionName())
	if err != nil {
		return nil, err
	}
	rel := req.GetRelationName()
	if rel == graph.Ellipsis {
		rel = ""
	}
	nodes, err := sch.ComputablePermissions(req.GetDefinitionName(), rel)
	if err != nil {
		return nil, mismatch(invalidField("relation_name", "%v", err))
	}
	prefix := req.GetOptionalDefinitionNameFilter()
	refs := reflectRefs(sch, nodes, func(n schema.Node) bool { return strings.HasPrefix(n.Type, prefix) })
	return &v1.ComputablePermissionsResponse{Permissions: refs, ReadAt: s.zedToken(rev)}, nil
}

func (svc *authzedSchema) DependentRelations(ctx context.Context, req *v1.DependentRelationsRequest) (*v1.DependentRelationsResponse, error) {
	resp, err := svc.dependentRelations(ctx, req)
	return resp, svc.s.authzedStatus(authzedSchemaService+"DependentRelations", err)
}

// dependentRelations lists what permission_name is computed from, as
// schema.DependentRelations finds it.
func (svc *authzedSchema) dependentRelations(ctx context.Context, req *v1.DependentRelationsRequest) (*v1.DependentRelationsResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	if req.GetPermissionName() == "" {
		return nil, invalidField("permission_name", "missing")
	}
	rev, sch, err := svc.reflectionTarget(ctx, req.GetConsistency(), req.GetDefinitionName())
	if err != nil {
		return nil, err
	}
	nodes, err := sch.DependentRelations(req.GetDefinitionName(), req.GetPermissionName())
	if err != nil {
		return nil, mismatch(invalidField("permission_name", "%v", err))
	}
	refs := reflectRefs(sch, nodes, func(schema.Node) bool { return true })
	return &v1.DependentRelationsResponse{Relations: refs, ReadAt: s.zedToken(rev)}, nil
}

// reflectionTarget checks a request's definition_name and returns the
// schema at its consistency, which must define it.
func (svc *authzedSchema) reflectionTarget(ctx context.Context, c *v1.Consistency, def string) (storage.Revision, *schema.Schema, error) {
	if def == "" {
		return 0, nil, invalidField("definition_name", "missing")
	}
	if err := graph.ValidateTypeName(def); err != nil {
		return 0, nil, invalidField("definition_name", "%v", err)
	}
	rev, snap, err := svc.s.snapshotAuthzed(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	if snap.Schema.Definition(def) == nil {
		return 0, nil, mismatch(invalidField("definition_name", "definition %q not found", def))
	}
	return rev, snap.Schema, nil
}
