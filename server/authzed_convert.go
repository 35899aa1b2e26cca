package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authzed/authzed-go/pkg/requestmeta"
	"github.com/authzed/authzed-go/pkg/responsemeta"
	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Conversions between SpiceDB's authzed.api.v1 messages and Pemba's
// graph/storage/core values, and the error mapping of that API. Every
// from-wire conversion validates and names the offending field in the
// authzed.api.v1 vocabulary (object_type, object_id, optional_relation).

// schemaMismatch marks a request that is well formed but names what the
// schema does not define or allow. SpiceDB answers those
// FAILED_PRECONDITION where Pemba's own API says INVALID_ARGUMENT.
type schemaMismatch struct{ err error }

func (e *schemaMismatch) Error() string { return e.err.Error() }
func (e *schemaMismatch) Unwrap() error { return e.err }

// mismatch marks err (nil stays nil) as a schemaMismatch.
func mismatch(err error) error {
	if err == nil {
		return nil
	}
	return &schemaMismatch{err: err}
}

// authzedStatus maps err to the status SpiceDB clients expect: schema
// mismatches (and the schema's refusals, core.SchemaError) become
// FAILED_PRECONDITION, field errors INVALID_ARGUMENT
// with the field named as authzed.api.v1 names it; the rest follows
// Pemba's mapping (toStatus). Where SpiceDB attaches a google.rpc.ErrorInfo
// with its reason, so does this (errorInfo).
func (s *Server) authzedStatus(method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	msg := err.Error()
	var fe *core.FieldError
	if errors.As(err, &fe) {
		msg = strings.Replace(msg, fe.Error(), fe.Render(authzedField), 1)
	}
	var sm *schemaMismatch
	var se *core.SchemaError
	switch {
	case errors.As(err, &sm), errors.As(err, &se), errors.Is(err, core.ErrNoSchema), errors.Is(err, core.ErrSchemaOrphans):
		return withErrorInfo(status.Error(codes.FailedPrecondition, msg), err)
	case fe != nil && !errors.Is(err, storage.ErrRevisionTooOld) && !errors.Is(err, storage.ErrRevisionUnknown):
		return withErrorInfo(status.Error(codes.InvalidArgument, msg), err)
	}
	return withErrorInfo(toStatus(s.log, method, err), err)
}

// authzedField names element i of p as authzed.api.v1 does: an object's
// type and id are object_type and object_id, a subject nests its object,
// and optional parts carry the optional_ prefix.
func authzedField(p core.Path, i int) string {
	inSubject := i > 0 && p[i-1] == "subject"
	switch p[i] {
	case "type":
		if inSubject {
			return "object.object_type"
		}
		return "object_type"
	case "id":
		if inSubject {
			return "object.object_id"
		}
		return "object_id"
	case "relation":
		if inSubject {
			return "optional_relation"
		}
	case "caveat":
		return "optional_caveat"
	case "name":
		if i > 0 && p[i-1] == "caveat" {
			return "caveat_name"
		}
	case "expiration":
		return "optional_expires_at"
	}
	return p[i]
}

// consistencyFromAuthzed translates a SpiceDB Consistency (nil means
// minimize_latency) into core's; a ZedToken is a Pemba zookie.
func consistencyFromAuthzed(c *v1.Consistency) core.Consistency {
	switch req := c.GetRequirement().(type) {
	case *v1.Consistency_FullyConsistent:
		return core.Consistency{Mode: core.FullyConsistent}
	case *v1.Consistency_AtLeastAsFresh:
		return core.Consistency{Mode: core.AtLeastAsFresh, Zookie: req.AtLeastAsFresh.GetToken()}
	case *v1.Consistency_AtExactSnapshot:
		return core.Consistency{Mode: core.AtExactSnapshot, Zookie: req.AtExactSnapshot.GetToken()}
	}
	return core.Consistency{Mode: core.MinimizeLatency}
}

// resolveAuthzed returns the revision a request's consistency asks for.
func (s *Server) resolveAuthzed(ctx context.Context, c *v1.Consistency) (storage.Revision, error) {
	return s.revs.Resolve(ctx, consistencyFromAuthzed(c), core.Field("consistency"))
}

// snapshotAuthzed resolves a request's consistency and opens the snapshot
// (schema and reader) the request reads.
func (s *Server) snapshotAuthzed(ctx context.Context, c *v1.Consistency) (storage.Revision, check.Snapshot, error) {
	rev, err := s.resolveAuthzed(ctx, c)
	if err != nil {
		return 0, check.Snapshot{}, err
	}
	snap, err := s.snapshot(ctx, rev)
	return rev, snap, err
}

// zedToken returns the wire ZedToken for rev: the same token as pemba.v1's
// zookie, so one token works on both APIs.
func (s *Server) zedToken(rev storage.Revision) *v1.ZedToken {
	return &v1.ZedToken{Token: s.revs.Zookie(rev)}
}

// sendServerVersion answers SpiceDB's io.spicedb.requestversion request
// header with the server's version in the io.spicedb.debug.version
// response header. setHeader is grpc.SetHeader's or a stream's SetHeader.
func (s *Server) sendServerVersion(ctx context.Context, setHeader func(metadata.MD) error) error {
	// ValueFromIncomingContext reads the one header without copying the
	// others, as FromIncomingContext would on every call.
	vals := metadata.ValueFromIncomingContext(ctx, string(requestmeta.RequestServerVersion))
	if len(vals) == 0 || (vals[0] != "true" && vals[0] != "1") {
		return nil
	}
	version := s.cfg.Version
	if version == "" {
		version = "unknown"
	}
	return setHeader(metadata.Pairs(string(responsemeta.ServerVersion), version))
}

// unaryServerVersion is sendServerVersion for a unary call.
func (s *Server) unaryServerVersion(ctx context.Context) error {
	return s.sendServerVersion(ctx, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
}

func objectFromAuthzed(o *v1.ObjectReference, field string) (graph.ObjectRef, error) {
	if o == nil {
		return graph.ObjectRef{}, invalidField(field, "missing")
	}
	if o.GetObjectType() == "" {
		return graph.ObjectRef{}, invalidField(field+".object_type", "missing")
	}
	if o.GetObjectId() == "" {
		return graph.ObjectRef{}, invalidField(field+".object_id", "missing")
	}
	ref := graph.ObjectRef{Type: o.GetObjectType(), ID: o.GetObjectId()}
	if err := ref.Validate(); err != nil {
		return graph.ObjectRef{}, invalidField(field, "%v", err)
	}
	return ref, nil
}

func subjectFromAuthzed(s *v1.SubjectReference, field string) (ref graph.SubjectRef, err error) {
	if s == nil {
		return graph.SubjectRef{}, invalidField(field, "missing")
	}
	var obj graph.ObjectRef
	if o := s.GetObject(); o.GetObjectId() == graph.Wildcard && o.GetObjectType() != "" {
		// A wildcard is a subject, not an object: SubjectRef.Validate
		// below checks it.
		obj = graph.ObjectRef{Type: o.GetObjectType(), ID: graph.Wildcard}
	} else if obj, err = objectFromAuthzed(o, field+".object"); err != nil {
		return graph.SubjectRef{}, err
	}
	ref = graph.SubjectRef{Object: obj, Relation: s.GetOptionalRelation()}
	if ref.Relation == graph.Ellipsis {
		ref.Relation = ""
	}
	if err := ref.Validate(); err != nil {
		return graph.SubjectRef{}, invalidField(field, "%v", err)
	}
	return ref, nil
}

func relationshipFromAuthzed(r *v1.Relationship, field string) (graph.Relationship, error) {
	if r == nil {
		return graph.Relationship{}, invalidField(field, "missing")
	}
	res, err := objectFromAuthzed(r.GetResource(), field+".resource")
	if err != nil {
		return graph.Relationship{}, err
	}
	if r.GetRelation() == "" {
		return graph.Relationship{}, invalidField(field+".relation", "missing")
	}
	sub, err := subjectFromAuthzed(r.GetSubject(), field+".subject")
	if err != nil {
		return graph.Relationship{}, err
	}
	out := graph.Relationship{Resource: res, Relation: r.GetRelation(), Subject: sub}
	if c := r.GetOptionalCaveat(); c != nil {
		if c.GetCaveatName() == "" {
			return graph.Relationship{}, invalidField(field+".optional_caveat.caveat_name", "missing")
		}
		out.Caveat = &graph.Caveat{Name: c.GetCaveatName(), Context: c.GetContext().AsMap()}
	}
	return withExpiration(out, r.GetOptionalExpiresAt(), field, "optional_expires_at")
}

func objectToAuthzed(o graph.ObjectRef) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: o.Type, ObjectId: o.ID}
}

func relationshipToAuthzed(r graph.Relationship) *v1.Relationship {
	out := &v1.Relationship{
		Resource: objectToAuthzed(r.Resource),
		Relation: r.Relation,
		Subject:  &v1.SubjectReference{Object: objectToAuthzed(r.Subject.Object), OptionalRelation: r.Subject.Relation},
	}
	if r.Caveat != nil {
		out.OptionalCaveat = &v1.ContextualizedCaveat{CaveatName: r.Caveat.Name}
		if len(r.Caveat.Context) > 0 {
			// Stored contexts are JSON values, which structpb accepts.
			if s, err := structpb.NewStruct(r.Caveat.Context); err == nil {
				out.OptionalCaveat.Context = s
			}
		}
	}
	if r.Expiration != nil {
		out.OptionalExpiresAt = timestamppb.New(*r.Expiration)
	}
	return out
}

// filterFromAuthzed converts a RelationshipFilter (read, delete,
// precondition, export, watch); a resource ID prefix becomes the storage
// filter's own, one key range on every engine.
func filterFromAuthzed(f *v1.RelationshipFilter, field string) (storage.Filter, error) {
	if f == nil {
		return storage.Filter{}, invalidField(field, "missing")
	}
	out := storage.Filter{ResourceType: f.GetResourceType(), Relation: f.GetOptionalRelation()}
	if prefix := f.GetOptionalResourceIdPrefix(); prefix != "" {
		switch {
		case out.ResourceType == "":
			return storage.Filter{}, invalidField(field+".optional_resource_id_prefix", "requires resource_type")
		case f.GetOptionalResourceId() != "":
			return storage.Filter{}, invalidField(field+".optional_resource_id_prefix", "cannot be combined with optional_resource_id")
		}
		if err := (graph.ObjectRef{Type: out.ResourceType, ID: prefix}).Validate(); err != nil {
			return storage.Filter{}, invalidField(field+".optional_resource_id_prefix", "%v", err)
		}
		out.ResourceIDPrefix = prefix
	}
	if id := f.GetOptionalResourceId(); id != "" {
		if out.ResourceType == "" {
			return storage.Filter{}, invalidField(field+".optional_resource_id", "requires resource_type")
		}
		out.ResourceIDs = []string{id}
	}
	if sf := f.GetOptionalSubjectFilter(); sf != nil {
		if sf.GetSubjectType() == "" {
			return storage.Filter{}, invalidField(field+".optional_subject_filter.subject_type", "missing")
		}
		out.Subject = &storage.SubjectFilter{Type: sf.GetSubjectType()}
		if id := sf.GetOptionalSubjectId(); id != "" {
			out.Subject.IDs = []string{id}
		}
		if rf := sf.GetOptionalRelation(); rf != nil {
			rel := rf.GetRelation()
			if rel == graph.Ellipsis {
				rel = ""
			}
			out.Subject.Relation = &rel
		}
	}
	if out.ResourceType == "" && out.Subject == nil {
		return storage.Filter{}, invalidField(field, "give at least resource_type or optional_subject_filter")
	}
	if err := checkFilterNames(out); err != nil {
		return storage.Filter{}, invalidField(field, "%v", err)
	}
	return out, nil
}

// validateFilterSchema checks that the types and relations a filter names
// are defined in sch, as SpiceDB does before reading or deleting.
func validateFilterSchema(sch *schema.Schema, f storage.Filter, field string) error {
	if f.ResourceType != "" {
		def := sch.Definition(f.ResourceType)
		if def == nil {
			return mismatch(core.Invalid(core.Field(field+".resource_type"), core.UnknownDefinition(f.ResourceType)))
		}
		if f.Relation != "" && !def.Has(f.Relation) {
			return mismatch(core.Invalid(core.Field(field+".optional_relation"), core.UnknownRelation(f.ResourceType, f.Relation, "relation")))
		}
	}
	if sf := f.Subject; sf != nil {
		def := sch.Definition(sf.Type)
		if def == nil {
			return mismatch(core.Invalid(core.Field(field+".optional_subject_filter.subject_type"), core.UnknownDefinition(sf.Type)))
		}
		if sf.Relation != nil && *sf.Relation != "" && !def.Has(*sf.Relation) {
			return mismatch(core.Invalid(core.Field(field+".optional_subject_filter.optional_relation.relation"),
				core.UnknownRelation(sf.Type, *sf.Relation, "relation or permission")))
		}
	}
	return nil
}

func preconditionsFromAuthzed(ps []*v1.Precondition) ([]storage.Precondition, error) {
	out := make([]storage.Precondition, 0, len(ps))
	for i, p := range ps {
		field := fmt.Sprintf("optional_preconditions[%d]", i)
		var must bool
		switch p.GetOperation() {
		case v1.Precondition_OPERATION_MUST_MATCH:
			must = true
		case v1.Precondition_OPERATION_MUST_NOT_MATCH:
		default:
			return nil, invalidField(field+".operation", "must be MUST_MATCH or MUST_NOT_MATCH")
		}
		f, err := filterFromAuthzed(p.GetFilter(), field+".filter")
		if err != nil {
			return nil, err
		}
		if f.ResourceType == "" {
			return nil, invalidField(field+".filter.resource_type", "missing")
		}
		out = append(out, storage.Precondition{MustMatch: must, Filter: f})
	}
	return out, nil
}

// checkPermissionship converts a check result's permissionship.
func checkPermissionship(p check.Permissionship) v1.CheckPermissionResponse_Permissionship {
	switch p {
	case check.HasPermission:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION
	case check.Conditional:
		return v1.CheckPermissionResponse_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	}
	return v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION
}

// lookupPermissionship converts a lookup result's permissionship.
func lookupPermissionship(p check.Permissionship) v1.LookupPermissionship {
	if p == check.Conditional {
		return v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION
	}
	return v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION
}

// partialCaveatInfo is the missing context of a conditional result (nil
// for a decided one).
func partialCaveatInfo(p check.Permissionship, missing []string) *v1.PartialCaveatInfo {
	if p != check.Conditional {
		return nil
	}
	return &v1.PartialCaveatInfo{MissingRequiredContext: missing}
}

// checkRequestFromAuthzed converts the parts of a check; field prefixes
// errors ("" or "items[3].").
func checkRequestFromAuthzed(res *v1.ObjectReference, perm string, sub *v1.SubjectReference, field string) (check.Request, error) {
	r, err := objectFromAuthzed(res, field+"resource")
	if err != nil {
		return check.Request{}, err
	}
	if perm == "" {
		return check.Request{}, invalidField(field+"permission", "missing")
	}
	su, err := subjectFromAuthzed(sub, field+"subject")
	if err != nil {
		return check.Request{}, err
	}
	return check.Request{Resource: r, Permission: perm, Subject: su}, nil
}

// validateAuthzedQuery checks a query's names against the schema
// (core.ValidateQuery); what it refuses is a schema mismatch.
func validateAuthzedQuery(sch *schema.Schema, resType, perm string, sub *graph.SubjectRef, resourceType core.Path) error {
	return mismatch(core.ValidateQuery(sch, resType, perm, sub, resourceType))
}
