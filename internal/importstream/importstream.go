// Package importstream drives the client side of ImportRelationships: it
// sends a stream of batches while it collects the server's running count
// of committed relationships, so a caller knows how many of its
// relationships are committed even when the stream breaks.
package importstream

import (
	"errors"
	"io"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// Result is what the server acknowledged.
type Result struct {
	// Last is the newest progress message received (nil when none was):
	// Last.Imported relationships of the stream, from its start, are
	// committed.
	Last *pb.ImportRelationshipsResponse
}

// Committed is how many relationships the server acknowledged as
// committed. After a broken stream the true count may be higher by the
// batch in flight, never lower, so resuming after Committed is safe.
func (r Result) Committed() int {
	return int(r.Last.GetImported())
}

// Run sends every message next yields, in order, then closes the sending
// side and waits for the server's last message. The error is the server's
// status when it ended the stream with one, else the first send error.
func Run(stream pb.RelationshipService_ImportRelationshipsClient, next func() (*pb.ImportRelationshipsRequest, bool)) (Result, error) {
	type done struct {
		last *pb.ImportRelationshipsResponse
		err  error
	}
	received := make(chan done, 1)
	go func() {
		var last *pb.ImportRelationshipsResponse
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				received <- done{last, err}
				return
			}
			last = resp
		}
	}()
	var sendErr error
	for msg, ok := next(); ok; msg, ok = next() {
		if sendErr = stream.Send(msg); sendErr != nil {
			break // the server ended the stream; Recv has its status
		}
	}
	if sendErr == nil {
		sendErr = stream.CloseSend()
	}
	got := <-received
	res := Result{Last: got.last}
	if got.err != nil {
		return res, got.err
	}
	if sendErr != nil && !errors.Is(sendErr, io.EOF) {
		return res, sendErr
	}
	return res, nil
}
