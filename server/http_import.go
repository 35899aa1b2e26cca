package server

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// httpImport serves ImportRelationships over HTTP/JSON in place of the
// generated gateway handler: a body of concatenated request messages in,
// one response out (the running count of the last committed batch).
//
// The generated handler of a bidirectional stream ends the gRPC stream
// normally when a message fails to decode, so the server would commit
// the relationships before the bad message as a complete import. Here a
// decoding failure cancels the stream instead: the server stops, and the
// client gets 400 (413 for a message over the limit) with how many
// relationships were committed before it.
func (s *Server) httpImport(gw *runtime.ServeMux) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, marshaler := runtime.MarshalerForRequest(gw, r)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		ctx, err := runtime.AnnotateContext(ctx, gw, r, "/pemba.v1.RelationshipService/ImportRelationships",
			runtime.WithHTTPPathPattern(importPath))
		if err != nil {
			runtime.HTTPError(ctx, gw, marshaler, w, r, err)
			return
		}
		stream, err := pb.NewRelationshipServiceClient(s.gwConn).ImportRelationships(ctx)
		if err != nil {
			runtime.HTTPError(ctx, gw, marshaler, w, r, err)
			return
		}
		acks := make(chan importOutcome, 1)
		go func() { acks <- collectAcks(stream) }()

		dec := marshaler.NewDecoder(r.Body)
		var decodeErr error
		for {
			var msg pb.ImportRelationshipsRequest
			if err := dec.Decode(&msg); err != nil {
				if !errors.Is(err, io.EOF) {
					decodeErr = err
				}
				break
			}
			if err := stream.Send(&msg); err != nil {
				break // the server ended the stream; the acks carry its status
			}
		}
		if decodeErr != nil {
			cancel() // not CloseSend: the server must not take the stream as complete
			got := <-acks
			if limit, ok := r.Context().Value(bodyLimitKey{}).(*bodyLimit); ok && limit.exceeded.Load() {
				writeJSONError(w, http.StatusRequestEntityTooLarge, limit.status())
				return
			}
			st := status.Newf(codes.InvalidArgument, "relationships: malformed message after %d committed relationships: %v",
				got.last.GetImported(), decodeErr)
			if withCount, err := st.WithDetails(got.progress()); err == nil {
				st = withCount
			}
			runtime.HTTPError(ctx, gw, marshaler, w, r, st.Err())
			return
		}
		_ = stream.CloseSend()
		got := <-acks
		if got.err != nil {
			runtime.HTTPError(ctx, gw, marshaler, w, r, got.err)
			return
		}
		runtime.ForwardResponseMessage(ctx, gw, marshaler, w, r, got.progress())
	}
}

// importOutcome is what an import stream's server side said: its last
// progress message and the status it ended with.
type importOutcome struct {
	last *pb.ImportRelationshipsResponse
	err  error
}

func (o importOutcome) progress() *pb.ImportRelationshipsResponse {
	if o.last == nil {
		return &pb.ImportRelationshipsResponse{}
	}
	return o.last
}

// collectAcks reads an import stream's progress messages to its end.
func collectAcks(stream pb.RelationshipService_ImportRelationshipsClient) importOutcome {
	var out importOutcome
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			out.err = err
			return out
		}
		out.last = resp
	}
}
