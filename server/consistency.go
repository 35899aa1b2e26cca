package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

// defaultConsistency is how fresh a pemba.v1 read that names no
// consistency is, over gRPC and HTTP alike (the CLI sends none unless
// --consistency is given): fully consistent, so a read after a write
// always sees it. minimize_latency, which may lag the head by up to
// --quantization, is faster but a client must ask for it. SpiceDB's API
// keeps SpiceDB's own default (consistencyFromAuthzed).
var defaultConsistency = core.Consistency{Mode: core.FullyConsistent}

// consistencyFromProto translates the wire Consistency (nil, or one with
// no requirement set, means defaultConsistency) into core's.
func consistencyFromProto(c *pb.Consistency) core.Consistency {
	switch req := c.GetRequirement().(type) {
	case *pb.Consistency_FullyConsistent:
		return core.Consistency{Mode: core.FullyConsistent}
	case *pb.Consistency_AtLeastAsFresh:
		return core.Consistency{Mode: core.AtLeastAsFresh, Zookie: req.AtLeastAsFresh.GetToken()}
	case *pb.Consistency_AtExactSnapshot:
		return core.Consistency{Mode: core.AtExactSnapshot, Zookie: req.AtExactSnapshot.GetToken()}
	case *pb.Consistency_MinimizeLatency:
		return core.Consistency{Mode: core.MinimizeLatency}
	}
	return defaultConsistency
}

// resolve returns the revision a request's consistency asks for; field
// names the consistency in errors.
func (s *Server) resolve(ctx context.Context, c *pb.Consistency, field string) (storage.Revision, error) {
	return s.revs.Resolve(ctx, consistencyFromProto(c), core.Field(field))
}

// zookie returns the wire zookie for rev, a committed revision.
func (s *Server) zookie(rev storage.Revision) *pb.Zookie {
	return &pb.Zookie{Token: s.revs.Zookie(rev)}
}

// snapshotFor resolves a request's consistency to a revision and returns
// the snapshot (schema and reader) every query of the request reads.
func (s *Server) snapshotFor(ctx context.Context, c *pb.Consistency) (storage.Revision, check.Snapshot, error) {
	rev, err := s.resolve(ctx, c, "consistency")
	if err != nil {
		return 0, check.Snapshot{}, err
	}
	snap, err := s.snapshot(ctx, rev)
	return rev, snap, err
}

// snapshot opens a reader at rev with the schema in force there.
func (s *Server) snapshot(ctx context.Context, rev storage.Revision) (check.Snapshot, error) {
	reader, sch, err := s.schemas.At(ctx, s.engine, rev)
	if err != nil {
		return check.Snapshot{}, err
	}
	return check.Snapshot{Schema: sch.Schema, Reader: reader}, nil
}

// ZookieHeader is the response header of streaming reads that carries the
// zookie they read at, so a client learns it even from an empty stream.
const ZookieHeader = "pemba-zookie"

// sendZookieHeader sends the read revision's zookie as a stream header.
func (s *Server) sendZookieHeader(stream grpc.ServerStream, rev storage.Revision) error {
	return stream.SetHeader(metadata.Pairs(ZookieHeader, s.revs.Zookies().Encode(rev)))
}
