package loadtest

import (
	"context"
	"fmt"
	"io"
	"time"

	pb "github.com/pembadb/pemba/proto/pemba/v1"

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
	batch := make([]*pb.Relationship, 0, importBatch)
	var sent int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := stream.Send(&pb.ImportRelationshipsRequest{Relationships: batch, Reason: "loadtest " + d.Name()}); err != nil {
			return err
		}
		sent += int64(len(batch))
		bar.Add(len(batch))
		batch = make([]*pb.Relationship, 0, importBatch)
		return nil
	}
	for r := range d.Relationships() {
		batch = append(batch, relationshipProto(r))
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				break // CloseAndRecv reports the server's reason
			}
		}
	}
	sendErr := flush()
	resp, err := stream.CloseAndRecv()
	bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("load %s: import after %d relationships: %w", d.Name(), sent, err)
	}
	if sendErr != nil {
		return nil, fmt.Errorf("load %s: import after %d relationships: %w", d.Name(), sent, sendErr)
	}
	if got := int64(resp.GetImported()); got != int64(d.Size()) {
		return nil, fmt.Errorf("load %s: server imported %d relationships, sent %d", d.Name(), got, d.Size())
	}
	secs := time.Since(start).Seconds()
	return &Load{Relationships: sent, Seconds: secs, PerSecond: float64(sent) / secs}, nil
}
