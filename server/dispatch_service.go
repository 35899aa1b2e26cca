package server

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	dpb "github.com/pembadb/pemba/proto/pemba/dispatch/v1"
	"github.com/pembadb/pemba/storage"
)

// clusterToken sends the cluster token with each dispatch.
type clusterToken string

func (t clusterToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false: plaintext clusters (no --tls-cert)
// send the token in the clear, as their clients send bearer tokens.
func (clusterToken) RequireTransportSecurity() bool { return false }

// Dispatch sends p to peer (dispatch.Transport).
func (c *cluster) Dispatch(ctx context.Context, peer string, p *dispatch.Problem) ([]dispatch.Answer, error) {
	cc, err := c.conn(peer)
	if err != nil {
		return nil, err
	}
	_, self := c.dispatch.Members()
	req := &dpb.DispatchCheckRequest{
		Revision: uint64(p.Revision), ResourceType: p.ResourceType, Relation: p.Relation, ResourceIds: p.ResourceIDs,
		SubjectType: p.Subject.Object.Type, SubjectId: p.Subject.Object.ID, SubjectRelation: p.Subject.Relation,
		NowUnixNanos: p.Now, Seq: p.Seq, Depth: uint32(p.Depth), Sender: self, InstanceId: c.instance,
	}
	resp, err := dpb.NewDispatchServiceClient(cc).DispatchCheck(ctx, req, grpc.PerRPCCredentials(clusterToken(c.token)))
	if err != nil {
		switch status.Code(err) {
		case codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted:
			return nil, fmt.Errorf("dispatch to %s: %w: %v", peer, dispatch.ErrRefused, err)
		}
		return nil, fmt.Errorf("dispatch to %s: %w", peer, err)
	}
	return answersFromProto(resp.GetAnswers(), len(p.ResourceIDs))
}

// answersFromProto converts a peer's answers, n of them.
func answersFromProto(in []*dpb.DispatchAnswer, n int) ([]dispatch.Answer, error) {
	if len(in) != n {
		return nil, fmt.Errorf("peer sent %d answers for %d resources", len(in), n)
	}
	out := make([]dispatch.Answer, n)
	for i, a := range in {
		out[i] = dispatch.Answer{Missing: a.GetMissing(), Low: dispatch.NoLow, Until: a.GetUntilUnixNanos()}
		if out[i].Until == 0 {
			out[i].Until = dispatch.Never
		}
		switch a.GetPermissionship() {
		case dpb.DispatchAnswer_PERMISSIONSHIP_NO:
			out[i].Permissionship = dispatch.No
		case dpb.DispatchAnswer_PERMISSIONSHIP_YES:
			out[i].Permissionship = dispatch.Yes
		case dpb.DispatchAnswer_PERMISSIONSHIP_MAYBE:
			out[i].Permissionship = dispatch.Maybe
		default:
			return nil, fmt.Errorf("peer sent answer %d with permissionship %v", i, a.GetPermissionship())
		}
	}
	return out, nil
}

// dispatchService answers the dispatches of the cluster's other servers.
type dispatchService struct {
	dpb.UnimplementedDispatchServiceServer
	s *Server
}

// DispatchCheck answers one received sub-problem through this server's
// cache, after checking it is well formed and within bounds.
func (svc *dispatchService) DispatchCheck(ctx context.Context, req *dpb.DispatchCheckRequest) (*dpb.DispatchCheckResponse, error) {
	s, c := svc.s, svc.s.cluster
	if req.GetInstanceId() != c.instance {
		// A peer on another datastore: its revisions mean other data.
		// Not a refusal of this problem but a misconfiguration, so the
		// sender backs off from this server.
		return nil, status.Errorf(codes.PermissionDenied, "instance_id: the sender serves datastore instance %q, this server %q: --peers must list servers of one datastore",
			req.GetInstanceId(), c.instance)
	}
	p, err := problemFromProto(req)
	if err != nil {
		return nil, err
	}
	select {
	case c.received <- struct{}{}:
		defer func() { <-c.received }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	snap, err := c.snapshots.at(ctx, p.Revision, s.snapshot)
	if err != nil {
		return nil, err
	}
	ans, cached, err := s.checker.ResolveDispatched(ctx, snap, p)
	if err != nil {
		return nil, queryError(nil, err)
	}
	c.recv.WithLabelValues(c.knownPeer(req.GetSender())).Inc()
	c.recvIDs.Add(float64(len(ans)))
	c.recvHits.Add(float64(cached))
	out := &dpb.DispatchCheckResponse{Answers: make([]*dpb.DispatchAnswer, len(ans))}
	for i, a := range ans {
		out.Answers[i] = answerToProto(a)
	}
	return out, nil
}

// problemFromProto converts a received request; the engine checks the
// names against the schema (check.ValidateDispatched).
func problemFromProto(req *dpb.DispatchCheckRequest) (dispatch.Problem, error) {
	switch {
	case req.GetRevision() == 0:
		return dispatch.Problem{}, invalidField("revision", "missing")
	case len(req.GetResourceIds()) > dispatch.MaxDispatchIDs:
		return dispatch.Problem{}, invalidField("resource_ids", "%d IDs, more than the limit of %d", len(req.GetResourceIds()), dispatch.MaxDispatchIDs)
	case req.GetDepth() > math.MaxInt32:
		return dispatch.Problem{}, invalidField("depth", "%d is out of range", req.GetDepth())
	}
	now := time.Unix(0, req.GetNowUnixNanos())
	if skew := time.Since(now).Abs(); skew > maxDispatchSkew {
		return dispatch.Problem{}, invalidField("now_unix_nanos", "%v from this server's clock, more than the limit of %v", skew.Round(time.Second), maxDispatchSkew)
	}
	return dispatch.Problem{
		Revision: storage.Revision(req.GetRevision()), ResourceType: req.GetResourceType(), Relation: req.GetRelation(),
		ResourceIDs: req.GetResourceIds(),
		Subject:     graph.SubjectRef{Object: graph.ObjectRef{Type: req.GetSubjectType(), ID: req.GetSubjectId()}, Relation: req.GetSubjectRelation()},
		Now:         req.GetNowUnixNanos(), Seq: req.GetSeq(), Depth: int(req.GetDepth()), Local: true,
	}, nil
}

// answerToProto converts an answer for a peer.
func answerToProto(a dispatch.Answer) *dpb.DispatchAnswer {
	out := &dpb.DispatchAnswer{Missing: a.Missing}
	if a.Until != dispatch.Never {
		out.UntilUnixNanos = a.Until
	}
	switch a.Permissionship {
	case dispatch.Yes:
		out.Permissionship = dpb.DispatchAnswer_PERMISSIONSHIP_YES
	case dispatch.Maybe:
		out.Permissionship = dpb.DispatchAnswer_PERMISSIONSHIP_MAYBE
	default:
		out.Permissionship = dpb.DispatchAnswer_PERMISSIONSHIP_NO
	}
	return out
}

// errNotClustered answers the internal API on a server without peers.
var errNotClustered = status.Error(codes.Unimplemented, "this server is not part of a cluster (no --peers)")

// authenticateCluster admits a call of the internal API: the cluster
// token is required, and bearer tokens are never accepted for it.
func (s *Server) authenticateCluster(ctx context.Context) error {
	if s.cluster == nil {
		return errNotClustered
	}
	if err := s.cluster.authenticate(ctx); err != nil {
		return err
	}
	return nil
}

// isDispatch reports whether method belongs to the internal API.
func isDispatch(method string) bool { return strings.HasPrefix(method, dispatchServicePrefix) }

// authUnary authenticates a unary call: the internal API with the
// cluster token, everything else with a bearer token.
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !isDispatch(info.FullMethod) {
		return s.auth.unary(ctx, req, info, handler)
	}
	if err := s.authenticateCluster(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// authStream authenticates a stream; the internal API has none.
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if isDispatch(info.FullMethod) {
		return status.Error(codes.Unimplemented, "the internal API has no streams")
	}
	return s.auth.stream(srv, ss, info, handler)
}
