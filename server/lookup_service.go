package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/expand"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

func (svc *permissionService) ExpandPermission(ctx context.Context, req *pb.ExpandPermissionRequest) (*pb.ExpandPermissionResponse, error) {
	s := svc.s
	res, err := objectFromProto(req.GetResource(), "resource")
	if err != nil {
		return nil, err
	}
	if req.GetPermission() == "" {
		return nil, invalidField("permission", "missing")
	}
	rev, snap, err := s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	if err := core.ValidateQuery(snap.Schema, res.Type, req.GetPermission(), nil, core.Path{"resource", "type"}); err != nil {
		return nil, err
	}
	tree, err := s.expandTree(ctx, snap, res, req.GetPermission(), false)
	if err != nil {
		return nil, err
	}
	pbTree, err := expandToProto(tree, 1)
	if err != nil {
		return nil, err
	}
	resp := &pb.ExpandPermissionResponse{Tree: pbTree, ExpandedAt: s.zookie(rev)}
	if n := proto.Size(resp); n > MaxExpandReplyBytes {
		return nil, expandReplyTooLarge(res, req.GetPermission(), n)
	}
	return resp, nil
}

// expandTree expands perm on res in snap within the server's bounds
// (depth, nodes), shallow (subject sets left for further calls) or whole,
// through the check engine (whose read cache it shares), and maps
// expand's errors to what a client is told.
func (s *Server) expandTree(ctx context.Context, snap check.Snapshot, res graph.ObjectRef, perm string, shallow bool) (*expand.Node, error) {
	tree, err := s.checker.Expand(ctx, snap, check.ExpandRequest{Resource: res, Permission: perm, Shallow: shallow})
	switch {
	case errors.Is(err, expand.ErrUnknown):
		return nil, invalidField("permission", "expand %s#%s: %v", res, perm, expand.ErrUnknown)
	case errors.Is(err, expand.ErrTooLarge):
		return nil, status.Errorf(codes.ResourceExhausted,
			"%v: the server's limit on an Expand tree; use LookupSubjects to list the subjects of a large permission", err)
	}
	return tree, err
}

// expandReplyTooLarge is the error of an Expand reply of n bytes, above
// MaxExpandReplyBytes.
func expandReplyTooLarge(res graph.ObjectRef, perm string, n int) error {
	return status.Errorf(codes.ResourceExhausted,
		"expand %s#%s: the reply would be %d bytes, above the limit of %d (what a gRPC client receives by default); "+
			"use LookupSubjects to list the subjects of a large permission", res, perm, n, MaxExpandReplyBytes)
}

// MaxExpandReplyBytes bounds an ExpandPermission reply: 4 MiB, the
// largest message a gRPC client receives unless configured otherwise.
const MaxExpandReplyBytes = 4 << 20

// maxExpandNesting bounds how deeply ExpandNode messages nest in a reply,
// below the recursion limit of protobuf decoders (Go's default is
// protowire.DefaultRecursionLimit, 10,000). The tree's depth is bounded
// by the max depth; this guards servers run with a very large one.
const maxExpandNesting = protowire.DefaultRecursionLimit / 2

var expandOps = map[expand.Op]pb.ExpandNode_Operation{
	expand.OpRelation:     pb.ExpandNode_OPERATION_RELATION,
	expand.OpPermission:   pb.ExpandNode_OPERATION_PERMISSION,
	expand.OpUnion:        pb.ExpandNode_OPERATION_UNION,
	expand.OpIntersection: pb.ExpandNode_OPERATION_INTERSECTION,
	expand.OpExclusion:    pb.ExpandNode_OPERATION_EXCLUSION,
	expand.OpArrow:        pb.ExpandNode_OPERATION_ARROW,
	expand.OpNil:          pb.ExpandNode_OPERATION_NIL,
	expand.OpSubject:      pb.ExpandNode_OPERATION_SUBJECT,
}

// expandToProto converts a tree whose root sits at nesting level; it fails
// when the tree nests deeper than maxExpandNesting.
func expandToProto(n *expand.Node, level int) (*pb.ExpandNode, error) {
	var c expandConverter
	return c.node(n, level)
}

// expandConverter carves a tree's messages from slabs: a tree of
// thousands of nodes is then a few allocations, not three per node.
type expandConverter struct {
	nodes    []pb.ExpandNode
	objects  []pb.ObjectRef
	subjects []pb.SubjectRef
}

// expandSlab is how many messages of a kind expandConverter (and
// subjectPacker) allocates at once.
const expandSlab = 256

// carve returns the next unused message of slab, allocating a new slab
// when it is used up.
func carve[T any](slab *[]T) *T {
	if len(*slab) == 0 {
		*slab = make([]T, expandSlab)
	}
	out := &(*slab)[0]
	*slab = (*slab)[1:]
	return out
}

func (c *expandConverter) object(o graph.ObjectRef) *pb.ObjectRef {
	out := carve(&c.objects)
	out.Type, out.Id = o.Type, o.ID
	return out
}

func (c *expandConverter) node(n *expand.Node, level int) (*pb.ExpandNode, error) {
	if n == nil {
		return nil, nil
	}
	if level > maxExpandNesting {
		return nil, status.Errorf(codes.ResourceExhausted,
			"expand: the tree nests deeper than %d levels, more than a client can decode; lower --max-depth", maxExpandNesting)
	}
	out := carve(&c.nodes)
	out.Operation = expandOps[n.Op]
	out.Relation, out.Arrow, out.Caveat, out.Seen = n.Relation, n.Arrow, n.Caveat, n.Seen
	if n.Object != (graph.ObjectRef{}) {
		out.Object = c.object(n.Object)
	}
	if n.Op == expand.OpSubject {
		sub := carve(&c.subjects)
		sub.Object, sub.Relation = c.object(n.Subject.Object), n.Subject.Relation
		out.Subject = sub
	}
	if n.Expiration != nil {
		out.Expiration = timestamp(*n.Expiration)
	}
	if len(n.Children) > 0 {
		out.Children = make([]*pb.ExpandNode, 0, len(n.Children))
	}
	for _, child := range n.Children {
		pc, err := c.node(child, level+1)
		if err != nil {
			return nil, err
		}
		out.Children = append(out.Children, pc)
	}
	return out, nil
}

func (svc *permissionService) LookupResources(req *pb.LookupResourcesRequest, stream pb.PermissionService_LookupResourcesServer) error {
	s := svc.s
	ctx := stream.Context()
	if req.GetResourceType() == "" {
		return invalidField("resource_type", "missing")
	}
	if req.GetPermission() == "" {
		return invalidField("permission", "missing")
	}
	sub, err := subjectFromProto(req.GetSubject(), "subject")
	if err != nil {
		return err
	}
	limit := s.requests.LookupLimit(int(req.GetLimit()))
	creq := check.LookupResourcesRequest{
		ResourceType: req.GetResourceType(), Permission: req.GetPermission(), Subject: sub,
		Context: contextFromProto(req.GetContext()), Now: time.Now(), Limit: limit,
	}
	var rev storage.Revision
	if c := req.GetCursor(); c != "" {
		r, pos, err := s.revs.Zookies().DecodeCursor(c)
		if err != nil {
			return invalidField("cursor", "%v", err)
		}
		rev, creq.Cursor = r, pos
	} else if rev, err = s.resolve(ctx, req.GetConsistency(), "consistency"); err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	if err := core.ValidateQuery(snap.Schema, creq.ResourceType, creq.Permission, &creq.Subject, core.Field("resource_type")); err != nil {
		return err
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	zookie := s.zookie(rev)
	var sendErr error
	err = s.checker.LookupResources(ctx, snap, creq, func(r check.ResourceResult) bool {
		sendErr = stream.Send(&pb.LookupResourcesResponse{
			ResourceId:     r.ID,
			Permissionship: permissionshipToProto(r.Permissionship),
			MissingContext: r.Missing,
			LookedUpAt:     zookie,
			Cursor:         s.revs.Zookies().EncodeCursor(rev, r.Cursor),
		})
		return sendErr == nil
	})
	if sendErr != nil {
		return sendErr
	}
	if errors.Is(err, check.ErrStaleCursor) {
		return status.Errorf(codes.Aborted, "cursor: %v; restart the lookup without a cursor", err)
	}
	return queryError(nil, err)
}

func (svc *permissionService) LookupSubjects(req *pb.LookupSubjectsRequest, stream pb.PermissionService_LookupSubjectsServer) error {
	s := svc.s
	ctx := stream.Context()
	res, err := objectFromProto(req.GetResource(), "resource")
	if err != nil {
		return err
	}
	if req.GetPermission() == "" {
		return invalidField("permission", "missing")
	}
	if req.GetSubjectType() == "" {
		return invalidField("subject_type", "missing")
	}
	perResponse := int(req.GetSubjectsPerResponse())
	if perResponse > maxSubjectsPerResponse {
		return invalidField("subjects_per_response", "at most %d, got %d", maxSubjectsPerResponse, perResponse)
	}
	rel := req.GetSubjectRelation()
	if rel == "..." {
		rel = ""
	}
	rev, snap, err := s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return err
	}
	if err := core.ValidateQuery(snap.Schema, res.Type, req.GetPermission(), nil, core.Path{"resource", "type"}); err != nil {
		return err
	}
	if sdef := snap.Schema.Definition(req.GetSubjectType()); sdef == nil {
		return invalidField("subject_type", "type %q is not defined in the schema", req.GetSubjectType())
	} else if rel != "" && !sdef.Has(rel) {
		return invalidField("subject_relation", "definition %q has no relation or permission %q", sdef.Name, rel)
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	zookie := s.zookie(rev)
	var sendErr error
	var packer *subjectPacker
	if perResponse > 1 {
		packer = newSubjectPacker(stream.Send, zookie, perResponse)
	}
	err = s.checker.LookupSubjects(ctx, snap, check.LookupSubjectsRequest{
		Resource: res, Permission: req.GetPermission(), SubjectType: req.GetSubjectType(), SubjectRelation: rel,
		Context: contextFromProto(req.GetContext()), Now: time.Now(),
	}, func(r check.SubjectResult) bool {
		var excluded []string
		for _, e := range r.Excluded {
			excluded = append(excluded, e.Object.ID)
		}
		if packer != nil {
			sendErr = packer.add(r.Subject.Object.ID, excluded, permissionshipToProto(r.Permissionship), r.Missing)
			return sendErr == nil
		}
		sendErr = stream.Send(&pb.LookupSubjectsResponse{
			SubjectId:          r.Subject.Object.ID,
			ExcludedSubjectIds: excluded,
			Permissionship:     permissionshipToProto(r.Permissionship),
			MissingContext:     r.Missing,
			LookedUpAt:         zookie,
		})
		return sendErr == nil
	})
	if sendErr == nil && err == nil && packer != nil {
		sendErr = packer.flush()
	}
	if sendErr != nil {
		return sendErr
	}
	return queryError(nil, err)
}

// Packed LookupSubjects answers (LookupSubjectsRequest.subjects_per_response).
const (
	// maxSubjectsPerResponse bounds subjects_per_response.
	maxSubjectsPerResponse = 1000
	// packedIDBytes sends a response whose subjects' IDs reach it, well
	// under a client's default 4 MiB message limit.
	packedIDBytes = 1 << 20
	// packedWait sends a response whose first subject was found this
	// long before the one being added: a lookup that finds its subjects
	// slowly (checks one by one) still streams them.
	packedWait = 20 * time.Millisecond
)

// subjectPacker packs the subjects of a LookupSubjects answer into
// responses of up to n subjects each, and sends each response once it
// is full, holds packedIDBytes of IDs, or has waited packedWait.
type subjectPacker struct {
	send   func(*pb.LookupSubjectsResponse) error
	zookie *pb.Zookie
	n      int
	now    func() time.Time
	// The response being filled, the unused rest of the subjects'
	// messages carved as expand's are (carve: a lookup of three subjects
	// allocates no thousand), the bytes of their IDs, and when its first
	// was added.
	resp  *pb.LookupSubjectsResponse
	slab  []pb.FoundSubject
	bytes int
	first time.Time
}

func newSubjectPacker(send func(*pb.LookupSubjectsResponse) error, zookie *pb.Zookie, n int) *subjectPacker {
	return &subjectPacker{send: send, zookie: zookie, n: n, now: time.Now}
}

// add packs one subject, and sends the response it completes.
func (p *subjectPacker) add(id string, excluded []string, permissionship pb.Permissionship, missing []string) error {
	if p.resp == nil {
		p.resp = &pb.LookupSubjectsResponse{LookedUpAt: p.zookie}
		p.bytes = 0
		p.first = p.now()
	}
	f := carve(&p.slab)
	f.SubjectId, f.ExcludedSubjectIds, f.Permissionship, f.MissingContext = id, excluded, permissionship, missing
	p.resp.Subjects = append(p.resp.Subjects, f)
	p.bytes += len(id)
	for _, e := range excluded {
		p.bytes += len(e)
	}
	if len(p.resp.Subjects) == p.n || p.bytes >= packedIDBytes || p.now().Sub(p.first) >= packedWait {
		return p.flush()
	}
	return nil
}

// flush sends the response being filled, if it holds a subject.
func (p *subjectPacker) flush() error {
	if p.resp == nil {
		return nil
	}
	resp := p.resp
	p.resp = nil
	return p.send(resp)
}
