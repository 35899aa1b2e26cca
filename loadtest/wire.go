package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/loadtest/dataset"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

// client is one gRPC connection with the stubs a worker calls. Stubs are
// safe for concurrent use.
type client struct {
	conn   *grpc.ClientConn
	perms  pb.PermissionServiceClient
	rels   pb.RelationshipServiceClient
	schema pb.SchemaServiceClient
	health healthpb.HealthClient
	access pb.AccessServiceClient
	// authzed and authzedSchema are SpiceDB's API on the same connection.
	authzed       v1.PermissionsServiceClient
	authzedSchema v1.SchemaServiceClient
}

// dial opens a connection to endpoint, sending token as a bearer token on
// every call when it is not empty, in plaintext when plaintext is set and
// with TLS (system roots) otherwise.
func dial(endpoint, token string, plaintext bool) (*client, error) {
	creds := insecure.NewCredentials()
	if !plaintext {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}
	if token != "" {
		md := metadata.Pairs("authorization", "Bearer "+token)
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
				return invoker(metadata.NewOutgoingContext(ctx, md), method, req, reply, cc, callOpts...)
			}),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, callOpts ...grpc.CallOption) (grpc.ClientStream, error) {
				return streamer(metadata.NewOutgoingContext(ctx, md), desc, cc, method, callOpts...)
			}))
	}
	conn, err := grpc.NewClient(endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	return &client{
		conn:   conn,
		perms:  pb.NewPermissionServiceClient(conn),
		rels:   pb.NewRelationshipServiceClient(conn),
		schema: pb.NewSchemaServiceClient(conn),
		health: healthpb.NewHealthClient(conn),
		access: pb.NewAccessServiceClient(conn),

		authzed:       v1.NewPermissionsServiceClient(conn),
		authzedSchema: v1.NewSchemaServiceClient(conn),
	}, nil
}

func objectProto(o graph.ObjectRef) *pb.ObjectRef { return &pb.ObjectRef{Type: o.Type, Id: o.ID} }

func subjectProto(s graph.SubjectRef) *pb.SubjectRef {
	return &pb.SubjectRef{Object: objectProto(s.Object), Relation: s.Relation}
}

// contextProto converts a caveat context; data sets only produce
// JSON-compatible values, so a failure is a bug in the generator.
func contextProto(ctx map[string]any) *structpb.Struct {
	if ctx == nil {
		return nil
	}
	s, err := structpb.NewStruct(ctx)
	if err != nil {
		panic(fmt.Sprintf("caveat context %v is not JSON-compatible: %v", ctx, err))
	}
	return s
}

func relationshipProto(r graph.Relationship) *pb.Relationship {
	out := &pb.Relationship{Resource: objectProto(r.Resource), Relation: r.Relation, Subject: subjectProto(r.Subject)}
	if r.Caveat != nil {
		out.Caveat = &pb.Caveat{Name: r.Caveat.Name, Context: contextProto(r.Caveat.Context)}
	}
	if r.Expiration != nil {
		out.Expiration = timestamppb.New(*r.Expiration)
	}
	return out
}

var minimizeLatency = &pb.Consistency{Requirement: &pb.Consistency_MinimizeLatency{MinimizeLatency: true}}

// consistency is at_least_as_fresh(z) when z is set, else minimize_latency.
func consistency(z *pb.Zookie) *pb.Consistency {
	if z == nil {
		return minimizeLatency
	}
	return &pb.Consistency{Requirement: &pb.Consistency_AtLeastAsFresh{AtLeastAsFresh: z}}
}

// freshConsistency is consistency for an analyst's question, which wants
// the data as it is: the head, or at least the worker's newest write.
func freshConsistency(z *pb.Zookie) *pb.Consistency {
	if z == nil {
		return &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}
	}
	return consistency(z)
}

// authzedConsistency is consistency in authzed.api.v1's messages: a
// zookie is a ZedToken on the same server.
func (w *worker) authzedConsistency() *v1.Consistency {
	c := &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
	if w.zookie != nil {
		c.Requirement = &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: &v1.ZedToken{Token: w.zookie.GetToken()}}
	}
	return c
}

func authzedObject(o graph.ObjectRef) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: o.Type, ObjectId: o.ID}
}

func authzedSubject(s graph.SubjectRef) *v1.SubjectReference {
	return &v1.SubjectReference{Object: authzedObject(s.Object), OptionalRelation: s.Relation}
}

// authzedCheckRequest is checkRequest in authzed.api.v1's messages.
func (w *worker) authzedCheckRequest(q dataset.Check) *v1.CheckPermissionRequest {
	return &v1.CheckPermissionRequest{
		Consistency: w.authzedConsistency(),
		Resource:    authzedObject(q.Resource),
		Permission:  q.Permission,
		Subject:     authzedSubject(q.Subject),
		Context:     contextProto(q.Context),
	}
}

// authzedRelationship is r in authzed.api.v1's messages.
func authzedRelationship(r graph.Relationship) *v1.Relationship {
	out := &v1.Relationship{Resource: authzedObject(r.Resource), Relation: r.Relation, Subject: authzedSubject(r.Subject)}
	if r.Caveat != nil {
		out.OptionalCaveat = &v1.ContextualizedCaveat{CaveatName: r.Caveat.Name, Context: contextProto(r.Caveat.Context)}
	}
	if r.Expiration != nil {
		out.OptionalExpiresAt = timestamppb.New(*r.Expiration)
	}
	return out
}
