package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/schema"
)

type schemaService struct {
	pb.UnimplementedSchemaServiceServer
	s *Server
}

// compileRequestSchema compiles a schema sent by a client.
func compileRequestSchema(text string) (*schema.Schema, error) {
	if strings.TrimSpace(text) == "" {
		return nil, invalidField("schema", "empty")
	}
	sch, err := schema.Compile("schema", text)
	if err != nil {
		return nil, invalidField("schema", "%v", err)
	}
	return sch, nil
}

func warningStrings(sch *schema.Schema) []string {
	var out []string
	for _, w := range sch.Warnings() {
		out = append(out, w.Error())
	}
	return out
}

func (svc *schemaService) WriteSchema(ctx context.Context, req *pb.WriteSchemaRequest) (*pb.WriteSchemaResponse, error) {
	s := svc.s
	next, err := compileRequestSchema(req.GetSchema())
	if err != nil {
		return nil, err
	}
	rev, err := s.writer.WriteSchema(ctx, req.GetSchema(), next, writeMetadata(ctx, req.GetReason(), req.GetLabels()))
	if err != nil {
		return nil, err
	}
	return &pb.WriteSchemaResponse{WrittenAt: s.zookie(rev), Warnings: warningStrings(next)}, nil
}

func (svc *schemaService) ReadSchema(ctx context.Context, req *pb.ReadSchemaRequest) (*pb.ReadSchemaResponse, error) {
	s := svc.s
	rev, err := s.resolve(ctx, req.GetConsistency(), "consistency")
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
	return &pb.ReadSchemaResponse{Schema: stored.Text, ReadAt: s.zookie(rev)}, nil
}

func (svc *schemaService) DiffSchema(ctx context.Context, req *pb.DiffSchemaRequest) (*pb.DiffSchemaResponse, error) {
	s := svc.s
	next, err := compileRequestSchema(req.GetSchema())
	if err != nil {
		return nil, err
	}
	rev, err := s.resolve(ctx, req.GetConsistency(), "consistency")
	if err != nil {
		return nil, err
	}
	resp := &pb.DiffSchemaResponse{Warnings: warningStrings(next), ReadAt: s.zookie(rev)}
	snap, err := s.snapshot(ctx, rev)
	if errors.Is(err, core.ErrNoSchema) {
		resp.Changes = diffSchemas(nil, next)
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	resp.Changes = diffSchemas(snap.Schema, next)
	orphans, err := core.Orphans(ctx, snap.Reader, snap.Schema, next)
	if err != nil {
		return nil, fmt.Errorf("count relationships the schema change affects: %w", err)
	}
	for _, o := range orphans {
		resp.Blockers = append(resp.Blockers, o.String())
	}
	return resp, nil
}
