package loadtest

import (
	"context"
	"fmt"
	"io"
	"iter"
	"time"

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
