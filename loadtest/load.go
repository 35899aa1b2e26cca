package loadtest

import (
	"context"
	"fmt"
	"io"
	"iter"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	pb "github.com/pembadb/pemba/proto/pemba/v1"

	"github.com/pembadb/pemba/internal/importstream"
	"github.com/pembadb/pemba/loadtest/dataset"
)

// importBatch is how many relationships one import message carries: large
// enough to amortize a round trip, far below the server's message limit.
const importBatch = 1000

// load writes d's schema and streams its relationships through
// ImportRelationships, showing progress on w (nil for none).
func load(ctx context.Context, c *client, d dataset.Dataset, w io.Writer) (*Load, error) {
	start := time.Now()
	if _, err := c.schema.WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: d.Schema(), Reason: "loadtest " + d.Name()}); err != nil {
		return nil, fmt.Errorf("load %s: write schema: %w", d.Name(), err)
	}
	stream, err := c.rels.ImportRelationships(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s: open import stream: %w", d.Name(), err)
	}
	bar := newBar(w, int64(d.Size()), "loading "+d.Name())
	next, stop := iter.Pull(d.Relationships())
	defer stop()
	var sent int64
	res, err := importstream.Run(stream, func() (*pb.ImportRelationshipsRequest, bool) {
		batch := make([]*pb.Relationship, 0, importBatch)
		for len(batch) < importBatch {
			r, ok := next()
			if !ok {
				break
			}
			batch = append(batch, relationshipProto(r))
		}
		if len(batch) == 0 {
			return nil, false
		}
		sent += int64(len(batch))
		bar.Add(len(batch))
		return &pb.ImportRelationshipsRequest{Relationships: batch, Reason: "loadtest " + d.Name()}, true
	})
	bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("load %s: import after %d relationships sent, %d committed: %w", d.Name(), sent, res.Committed(), err)
	}
	if got := res.Committed(); got != d.Size() {
		return nil, fmt.Errorf("load %s: server imported %d relationships, sent %d", d.Name(), got, d.Size())
	}
	secs := time.Since(start).Seconds()
	return &Load{Relationships: sent, Seconds: secs, PerSecond: float64(sent) / secs}, nil
}

// authzedImportSize is how many relationships one SpiceDB import carries:
// ImportBulkRelationships is one transaction, and this is what SpiceDB's
// own tools send in one (and Pemba's default bound).
const authzedImportSize = 10000

// loadAuthzed is load through SpiceDB's authzed.api.v1 (WriteSchema, then
// ImportBulkRelationships of authzedImportSize relationships each), so the
// same data set loads into a SpiceDB server or into Pemba's SpiceDB API.
func loadAuthzed(ctx context.Context, c *client, d dataset.Dataset, w io.Writer) (*Load, error) {
	start := time.Now()
	if _, err := c.authzedSchema.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: d.Schema()}); err != nil {
		return nil, fmt.Errorf("load %s: write schema: %w", d.Name(), err)
	}
	bar := newBar(w, int64(d.Size()), "loading "+d.Name())
	defer bar.Finish()
	var sent, loaded int64
	batch := make([]*v1.Relationship, 0, importBatch)
	var stream v1.PermissionsService_ImportBulkRelationshipsClient
	inStream := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if stream == nil {
			var err error
			if stream, err = c.authzed.ImportBulkRelationships(ctx); err != nil {
				return err
			}
		}
		if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: batch}); err != nil {
			_, err = stream.CloseAndRecv() // the server's reason
			return err
		}
		sent, inStream = sent+int64(len(batch)), inStream+len(batch)
		bar.Add(len(batch))
		batch = make([]*v1.Relationship, 0, importBatch)
		return nil
	}
	closeStream := func() error {
		if stream == nil {
			return nil
		}
		resp, err := stream.CloseAndRecv()
		stream, inStream = nil, 0
		loaded += int64(resp.GetNumLoaded())
		return err
	}
	for r := range d.Relationships() {
		batch = append(batch, authzedRelationship(r))
		if len(batch) < importBatch {
			continue
		}
		if err := flush(); err != nil {
			return nil, fmt.Errorf("load %s: import after %d relationships sent: %w", d.Name(), sent, err)
		}
		if inStream >= authzedImportSize {
			if err := closeStream(); err != nil {
				return nil, fmt.Errorf("load %s: import after %d relationships sent: %w", d.Name(), sent, err)
			}
		}
	}
	if err := flush(); err != nil {
		return nil, fmt.Errorf("load %s: import after %d relationships sent: %w", d.Name(), sent, err)
	}
	if err := closeStream(); err != nil {
		return nil, fmt.Errorf("load %s: import after %d relationships sent: %w", d.Name(), sent, err)
	}
	if loaded != int64(d.Size()) {
		return nil, fmt.Errorf("load %s: server imported %d relationships, sent %d", d.Name(), loaded, d.Size())
	}
	secs := time.Since(start).Seconds()
	return &Load{Relationships: sent, Seconds: secs, PerSecond: float64(sent) / secs}, nil
}
