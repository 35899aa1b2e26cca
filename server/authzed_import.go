package server

import (
	"context"
	"errors"
	"fmt"
	"io"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/storage"
)

func (svc *authzedPermissions) ImportBulkRelationships(stream grpc.ClientStreamingServer[v1.ImportBulkRelationshipsRequest, v1.ImportBulkRelationshipsResponse]) error {
	return svc.s.authzedStatus(authzedPermissionsService+"ImportBulkRelationships", svc.importBulkRelationships(stream))
}

// importBulkRelationships loads a stream of relationships through the
// core import of `pemba import` (schema guard, idle timeout, audit
// metadata) as SpiceDB does: in one transaction (of at most
// --max-import-transaction relationships), creating each one, so a
// relationship already stored or sent twice fails the import with
// ALREADY_EXISTS and nothing of the stream is committed.
func (svc *authzedPermissions) importBulkRelationships(stream grpc.ClientStreamingServer[v1.ImportBulkRelationshipsRequest, v1.ImportBulkRelationshipsResponse]) error {
	s := svc.s
	ctx := stream.Context()
	if err := s.sendServerVersion(ctx, stream.SetHeader); err != nil {
		return err
	}
	imp, err := s.writer.NewImport(ctx, s.requests.ImportBatchSize, writeMetadata(ctx, "", nil),
		func(int, storage.Revision) error { return nil })
	if err != nil {
		return err
	}
	defer imp.Close()
	imp.RefuseExisting()
	imp.Atomic(s.requests.MaxImportTransaction)
	in := newIdleReceiver(stream.Recv, s.limits.StreamIdleTimeout)
	if err := importAuthzed(ctx, imp, in); err != nil {
		return err
	}
	return stream.SendAndClose(&v1.ImportBulkRelationshipsResponse{NumLoaded: uint64(imp.Committed())})
}

// importAuthzed feeds the relationships of every message of in to imp,
// naming each by its position in the stream.
func importAuthzed(ctx context.Context, imp *core.Import, in *idleReceiver[v1.ImportBulkRelationshipsRequest]) error {
	for {
		msg, err := in.recv(ctx)
		if errors.Is(err, io.EOF) {
			return imp.Finish(ctx)
		}
		if err != nil {
			return err
		}
		for _, p := range msg.GetRelationships() {
			field := fmt.Sprintf("relationships[%d]", imp.Position())
			r, err := relationshipFromAuthzed(p, field)
			if err != nil {
				return err
			}
			if err := imp.Add(ctx, r, core.Field(field)); err != nil {
				return err
			}
		}
	}
}
