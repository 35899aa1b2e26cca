package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// authzedPermissions serves SpiceDB's authzed.api.v1.PermissionsService
// over the same core as pemba.v1: the writer, the check engine, the
// revisions and zookies. RPCs not listed here answer UNIMPLEMENTED.
type authzedPermissions struct {
	v1.UnimplementedPermissionsServiceServer
	s *Server
}

// Method names for logs and the error mapping.
const authzedPermissionsService = "/authzed.api.v1.PermissionsService/"

func (svc *authzedPermissions) CheckPermission(ctx context.Context, req *v1.CheckPermissionRequest) (*v1.CheckPermissionResponse, error) {
	resp, err := svc.checkPermission(ctx, req)
	return resp, svc.s.authzedStatus(authzedPermissionsService+"CheckPermission", err)
}

func (svc *authzedPermissions) checkPermission(ctx context.Context, req *v1.CheckPermissionRequest) (*v1.CheckPermissionResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	creq, err := checkRequestFromAuthzed(req.GetResource(), req.GetPermission(), req.GetSubject(), "")
	if err != nil {
		return nil, err
	}
	creq.Context = contextFromProto(req.GetContext())
	creq.Now = time.Now()
	creq.Explain = req.GetWithTracing()
	rev, snap, err := s.snapshotAuthzed(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	if err := validateAuthzedQuery(snap.Schema, creq.Resource.Type, creq.Permission, &creq.Subject, core.Path{"resource", "type"}); err != nil {
		return nil, err
	}
	res, err := s.checker.Check(ctx, snap, creq)
	if err != nil {
		return nil, queryError(nil, err)
	}
	resp := &v1.CheckPermissionResponse{
		CheckedAt:         s.zedToken(rev),
		Permissionship:    checkPermissionship(res.Permissionship),
		PartialCaveatInfo: partialCaveatInfo(res.Permissionship, res.Missing),
		DebugTrace:        debugTrace(snap.Schema, creq.Subject, res),
	}
	if resp.DebugTrace != nil {
		stored, err := snap.Reader.ReadSchema(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the schema of the trace: %w", err)
		}
		resp.DebugTrace.SchemaUsed = stored.Text
	}
	return resp, nil
}

func (svc *authzedPermissions) CheckBulkPermissions(ctx context.Context, req *v1.CheckBulkPermissionsRequest) (*v1.CheckBulkPermissionsResponse, error) {
	resp, err := svc.checkBulkPermissions(ctx, req)
	return resp, svc.s.authzedStatus(authzedPermissionsService+"CheckBulkPermissions", err)
}

func (svc *authzedPermissions) checkBulkPermissions(ctx context.Context, req *v1.CheckBulkPermissionsRequest) (*v1.CheckBulkPermissionsResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	items := req.GetItems()
	if err := s.requests.BulkCheckItems(len(items), core.Field("items")); err != nil {
		return nil, err
	}
	now := time.Now()
	reqs := make([]check.Request, len(items))
	for i, it := range items {
		r, err := checkRequestFromAuthzed(it.GetResource(), it.GetPermission(), it.GetSubject(), fmt.Sprintf("items[%d].", i))
		if err != nil {
			return nil, err
		}
		r.Context = contextFromProto(it.GetContext())
		r.Now = now
		r.Explain = req.GetWithTracing()
		reqs[i] = r
	}
	rev, snap, err := s.snapshotAuthzed(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	// A malformed item fails the request (above); an item the schema does
	// not define gets its own error, like one whose evaluation fails, and
	// the other items are answered.
	itemErr := make([]error, len(reqs))
	var valid []check.Request
	var validAt []int
	for i, r := range reqs {
		if err := validateAuthzedQuery(snap.Schema, r.Resource.Type, r.Permission, &r.Subject, core.Path{fmt.Sprintf("items[%d]", i), "resource", "type"}); err != nil {
			itemErr[i] = err
			continue
		}
		valid = append(valid, r)
		validAt = append(validAt, i)
	}
	results, err := s.checker.BulkCheck(ctx, snap, valid)
	if err != nil {
		return nil, err
	}
	answers := make([]check.BulkResult, len(reqs))
	for j, r := range results {
		answers[validAt[j]] = r
	}
	resp := &v1.CheckBulkPermissionsResponse{CheckedAt: s.zedToken(rev)}
	for i, it := range items {
		pair := &v1.CheckBulkPermissionsPair{Request: it}
		resp.Pairs = append(resp.Pairs, pair)
		if err := itemErr[i]; err != nil || answers[i].Err != nil {
			if err == nil {
				err = queryError(core.Path{fmt.Sprintf("items[%d]", i)}, answers[i].Err)
			}
			st := status.Convert(s.authzedStatus(authzedPermissionsService+"CheckBulkPermissions", err))
			pair.Response = &v1.CheckBulkPermissionsPair_Error{Error: st.Proto()}
			continue
		}
		r := answers[i].Result
		pair.Response = &v1.CheckBulkPermissionsPair_Item{Item: &v1.CheckBulkPermissionsResponseItem{
			Permissionship:    checkPermissionship(r.Permissionship),
			PartialCaveatInfo: partialCaveatInfo(r.Permissionship, r.Missing),
			DebugTrace:        debugTrace(snap.Schema, reqs[i].Subject, r),
		}}
	}
	return resp, nil
}

func (svc *authzedPermissions) WriteRelationships(ctx context.Context, req *v1.WriteRelationshipsRequest) (*v1.WriteRelationshipsResponse, error) {
	resp, err := svc.writeRelationships(ctx, req)
	return resp, svc.s.authzedStatus(authzedPermissionsService+"WriteRelationships", err)
}

func (svc *authzedPermissions) writeRelationships(ctx context.Context, req *v1.WriteRelationshipsRequest) (*v1.WriteRelationshipsResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	updates := req.GetUpdates()
	muts := make([]storage.Mutation, len(updates))
	for i, u := range updates {
		field := fmt.Sprintf("updates[%d]", i)
		var op storage.Op
		switch u.GetOperation() {
		case v1.RelationshipUpdate_OPERATION_CREATE:
			op = storage.OpCreate
		case v1.RelationshipUpdate_OPERATION_TOUCH:
			op = storage.OpTouch
		case v1.RelationshipUpdate_OPERATION_DELETE:
			op = storage.OpDelete
		default:
			return nil, invalidField(field+".operation", "must be CREATE, TOUCH or DELETE")
		}
		r, err := relationshipFromAuthzed(u.GetRelationship(), field+".relationship")
		if err != nil {
			return nil, err
		}
		muts[i] = storage.Mutation{Op: op, Relationship: r}
	}
	pre, err := preconditionsFromAuthzed(req.GetOptionalPreconditions())
	if err != nil {
		return nil, err
	}
	meta, err := transactionMetadata(ctx, req.GetOptionalTransactionMetadata())
	if err != nil {
		return nil, err
	}
	rev, err := s.writer.WriteRelationships(ctx, storage.WriteRequest{
		Preconditions: pre,
		Mutations:     muts,
		Metadata:      meta,
	}, "updates")
	if err != nil {
		return nil, schemaRefusal(err)
	}
	return &v1.WriteRelationshipsResponse{WrittenAt: s.zedToken(rev)}, nil
}

// transactionMetadata is the audit metadata of a write: the caller as
// actor, and SpiceDB's optional_transaction_metadata as labels, one per
// entry (core.LabelsFromMap), which the audit log records and searches.
func transactionMetadata(ctx context.Context, m *structpb.Struct) (storage.WriteMetadata, error) {
	meta := writeMetadata(ctx, "", nil)
	if len(m.GetFields()) == 0 {
		return meta, nil
	}
	labels, err := core.LabelsFromMap(m.AsMap(), core.Field("optional_transaction_metadata"))
	if err != nil {
		return storage.WriteMetadata{}, err
	}
	meta.Labels = labels
	return meta, nil
}

// schemaRefusal marks the writer's refusal of a relationship the schema
// does not allow as a schema mismatch. The request was checked for form
// before it reached the writer, so a field error naming a part of an
// update's relationship (core.ValidateRelationship's path below
// updates[i].relationship) is the schema's; the writer's other field
// errors (too many updates, a relationship updated twice) name the list
// or the relationship itself and stay INVALID_ARGUMENT.
func schemaRefusal(err error) error {
	var fe *core.FieldError
	if errors.As(err, &fe) && len(fe.Path) > 2 && fe.Path[1] == "relationship" {
		return mismatch(err)
	}
	return err
}

func (svc *authzedPermissions) DeleteRelationships(ctx context.Context, req *v1.DeleteRelationshipsRequest) (*v1.DeleteRelationshipsResponse, error) {
	resp, err := svc.deleteRelationships(ctx, req)
	return resp, svc.s.authzedStatus(authzedPermissionsService+"DeleteRelationships", err)
}

func (svc *authzedPermissions) deleteRelationships(ctx context.Context, req *v1.DeleteRelationshipsRequest) (*v1.DeleteRelationshipsResponse, error) {
	s := svc.s
	if err := s.unaryServerVersion(ctx); err != nil {
		return nil, err
	}
	if c := req.GetOptionalCursor(); c != nil {
		if err := svc.deleteCursor(c.GetToken(), req); err != nil {
			return nil, err
		}
	}
	if req.GetRelationshipFilter() == nil {
		return nil, invalidField("relationship_filter", "missing")
	}
	f, err := filterFromAuthzed(req.GetRelationshipFilter(), "relationship_filter")
	if err != nil {
		return nil, err
	}
	pre, err := preconditionsFromAuthzed(req.GetOptionalPreconditions())
	if err != nil {
		return nil, err
	}
	meta, err := transactionMetadata(ctx, req.GetOptionalTransactionMetadata())
	if err != nil {
		return nil, err
	}
	_, sch, err := s.writer.HeadSchema(ctx)
	if err != nil {
		return nil, err
	}
	if sch.Schema == nil {
		return nil, core.ErrNoSchema
	}
	if err := validateFilterSchema(sch.Schema, f, "relationship_filter"); err != nil {
		return nil, err
	}
	// Without optional_allow_partial_deletions, SpiceDB deletes nothing
	// when more relationships match than optional_limit.
	res, err := s.writer.Delete(ctx, core.DeleteRequest{
		Filter: f, Limit: int(req.GetOptionalLimit()), AllOrNothing: !req.GetOptionalAllowPartialDeletions(),
		Preconditions: pre, Metadata: meta,
	}, core.Field("relationship_filter"))
	if err != nil {
		return nil, err
	}
	out := &v1.DeleteRelationshipsResponse{
		DeletedAt:                 s.zedToken(res.Revision),
		DeletionProgress:          v1.DeleteRelationshipsResponse_DELETION_PROGRESS_COMPLETE,
		RelationshipsDeletedCount: uint64(res.Deleted),
	}
	if res.More {
		out.DeletionProgress = v1.DeleteRelationshipsResponse_DELETION_PROGRESS_PARTIAL
		out.AfterResultCursor = &v1.Cursor{Token: s.revs.Zookies().EncodeCursor(res.Revision, "")}
	}
	return out, nil
}

// deleteCursor checks the cursor a partial delete handed out, which the
// next call passes back to go on. A committed delete leaves none of the
// relationships it removed to re-examine, so going on is deleting what
// still matches: the cursor carries only the revision it was issued at.
// As in SpiceDB, it needs optional_limit and
// optional_allow_partial_deletions.
func (svc *authzedPermissions) deleteCursor(token string, req *v1.DeleteRelationshipsRequest) error {
	if _, _, err := svc.s.revs.Zookies().DecodeCursor(token); err != nil {
		return invalidField("optional_cursor", "%v", err)
	}
	if req.GetOptionalLimit() == 0 || !req.GetOptionalAllowPartialDeletions() {
		return invalidField("optional_cursor", "requires optional_limit and optional_allow_partial_deletions")
	}
	return nil
}

func (svc *authzedPermissions) ReadRelationships(req *v1.ReadRelationshipsRequest, stream grpc.ServerStreamingServer[v1.ReadRelationshipsResponse]) error {
	return svc.s.authzedStatus(authzedPermissionsService+"ReadRelationships", svc.readRelationships(req, stream))
}

func (svc *authzedPermissions) readRelationships(req *v1.ReadRelationshipsRequest, stream grpc.ServerStreamingServer[v1.ReadRelationshipsResponse]) error {
	s := svc.s
	ctx := stream.Context()
	if err := s.sendServerVersion(ctx, stream.SetHeader); err != nil {
		return err
	}
	f, err := filterFromAuthzed(req.GetRelationshipFilter(), "relationship_filter")
	if err != nil {
		return err
	}
	var rev storage.Revision
	var after *graph.Relationship
	if c := req.GetOptionalCursor().GetToken(); c != "" {
		if rev, after, err = s.revs.Zookies().RelationshipCursor(c); err != nil {
			return invalidField("optional_cursor", "%v", err)
		}
	} else if rev, err = s.resolveAuthzed(ctx, req.GetConsistency()); err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	if err := validateFilterSchema(snap.Schema, f, "relationship_filter"); err != nil {
		return err
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	token := s.zedToken(rev)
	opts := storage.QueryOptions{Limit: int(req.GetOptionalLimit()), After: after}
	for r, err := range snap.Reader.QueryRelationships(ctx, f, opts) {
		if err != nil {
			return fmt.Errorf("read relationships: %w", err)
		}
		if err := stream.Send(&v1.ReadRelationshipsResponse{
			ReadAt:            token,
			Relationship:      relationshipToAuthzed(r),
			AfterResultCursor: &v1.Cursor{Token: s.revs.Zookies().EncodeCursor(rev, r.String())},
		}); err != nil {
			return err
		}
	}
	return nil
}

func (svc *authzedPermissions) LookupResources(req *v1.LookupResourcesRequest, stream grpc.ServerStreamingServer[v1.LookupResourcesResponse]) error {
	return svc.s.authzedStatus(authzedPermissionsService+"LookupResources", svc.lookupResources(req, stream))
}

func (svc *authzedPermissions) lookupResources(req *v1.LookupResourcesRequest, stream grpc.ServerStreamingServer[v1.LookupResourcesResponse]) error {
	s := svc.s
	ctx := stream.Context()
	if err := s.sendServerVersion(ctx, stream.SetHeader); err != nil {
		return err
	}
	if req.GetResourceObjectType() == "" {
		return invalidField("resource_object_type", "missing")
	}
	if req.GetPermission() == "" {
		return invalidField("permission", "missing")
	}
	sub, err := subjectFromAuthzed(req.GetSubject(), "subject")
	if err != nil {
		return err
	}
	creq := check.LookupResourcesRequest{
		ResourceType: req.GetResourceObjectType(), Permission: req.GetPermission(), Subject: sub,
		Context: contextFromProto(req.GetContext()), Now: time.Now(),
		Limit: s.requests.LookupLimit(int(req.GetOptionalLimit())),
	}
	var rev storage.Revision
	if c := req.GetOptionalCursor().GetToken(); c != "" {
		r, pos, err := s.revs.Zookies().DecodeCursor(c)
		if err != nil {
			return invalidField("optional_cursor", "%v", err)
		}
		rev, creq.Cursor = r, pos
	} else if rev, err = s.resolveAuthzed(ctx, req.GetConsistency()); err != nil {
		return err
	}
	snap, err := s.snapshot(ctx, rev)
	if err != nil {
		return err
	}
	if err := validateAuthzedQuery(snap.Schema, creq.ResourceType, creq.Permission, &creq.Subject, core.Field("resource_object_type")); err != nil {
		return err
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	token := s.zedToken(rev)
	var sendErr error
	err = s.checker.LookupResources(ctx, snap, creq, func(r check.ResourceResult) bool {
		sendErr = stream.Send(&v1.LookupResourcesResponse{
			LookedUpAt:        token,
			ResourceObjectId:  r.ID,
			Permissionship:    lookupPermissionship(r.Permissionship),
			PartialCaveatInfo: partialCaveatInfo(r.Permissionship, r.Missing),
			AfterResultCursor: &v1.Cursor{Token: s.revs.Zookies().EncodeCursor(rev, r.Cursor)},
		})
		return sendErr == nil
	})
	if sendErr != nil {
		return sendErr
	}
	if errors.Is(err, check.ErrStaleCursor) {
		return status.Errorf(codes.Aborted, "optional_cursor: %v; restart the lookup without a cursor", err)
	}
	return queryError(nil, err)
}

func (svc *authzedPermissions) LookupSubjects(req *v1.LookupSubjectsRequest, stream grpc.ServerStreamingServer[v1.LookupSubjectsResponse]) error {
	return svc.s.authzedStatus(authzedPermissionsService+"LookupSubjects", svc.lookupSubjects(req, stream))
}

func (svc *authzedPermissions) lookupSubjects(req *v1.LookupSubjectsRequest, stream grpc.ServerStreamingServer[v1.LookupSubjectsResponse]) error {
	s := svc.s
	ctx := stream.Context()
	if err := s.sendServerVersion(ctx, stream.SetHeader); err != nil {
		return err
	}
	// As SpiceDB does: a concrete limit is refused, and a cursor, which
	// only a limited lookup would hand out, is ignored.
	if req.GetOptionalConcreteLimit() != 0 {
		return status.Error(codes.Unimplemented, "optional_concrete_limit: concrete limit is not yet supported")
	}
	res, err := objectFromAuthzed(req.GetResource(), "resource")
	if err != nil {
		return err
	}
	if req.GetPermission() == "" {
		return invalidField("permission", "missing")
	}
	if req.GetSubjectObjectType() == "" {
		return invalidField("subject_object_type", "missing")
	}
	rel := req.GetOptionalSubjectRelation()
	if rel == graph.Ellipsis {
		rel = ""
	}
	excludeWildcards := req.GetWildcardOption() == v1.LookupSubjectsRequest_WILDCARD_OPTION_EXCLUDE_WILDCARDS
	rev, snap, err := s.snapshotAuthzed(ctx, req.GetConsistency())
	if err != nil {
		return err
	}
	if err := validateAuthzedQuery(snap.Schema, res.Type, req.GetPermission(), nil, core.Path{"resource", "type"}); err != nil {
		return err
	}
	if sdef := snap.Schema.Definition(req.GetSubjectObjectType()); sdef == nil {
		return mismatch(core.Invalid(core.Field("subject_object_type"), core.UnknownDefinition(req.GetSubjectObjectType())))
	} else if rel != "" && !sdef.Has(rel) {
		return mismatch(core.Invalid(core.Field("optional_subject_relation"), core.UnknownRelation(sdef.Name, rel, "relation or permission")))
	}
	if err := s.sendZookieHeader(stream, rev); err != nil {
		return err
	}
	token := s.zedToken(rev)
	var sendErr error
	err = s.checker.LookupSubjects(ctx, snap, check.LookupSubjectsRequest{
		Resource: res, Permission: req.GetPermission(), SubjectType: req.GetSubjectObjectType(), SubjectRelation: rel,
		Context: contextFromProto(req.GetContext()), Now: time.Now(),
	}, func(r check.SubjectResult) bool {
		if excludeWildcards && r.Subject.Object.ID == graph.Wildcard {
			return true
		}
		sendErr = stream.Send(lookupSubjectToAuthzed(r, token))
		return sendErr == nil
	})
	if sendErr != nil {
		return sendErr
	}
	return queryError(nil, err)
}

// lookupSubjectToAuthzed converts one LookupSubjects result, filling both
// the current subject fields and the deprecated flat ones clients still read.
func lookupSubjectToAuthzed(r check.SubjectResult, token *v1.ZedToken) *v1.LookupSubjectsResponse {
	perm := lookupPermissionship(r.Permissionship)
	info := partialCaveatInfo(r.Permissionship, r.Missing)
	resp := &v1.LookupSubjectsResponse{
		LookedUpAt:        token,
		SubjectObjectId:   r.Subject.Object.ID,
		Permissionship:    perm,
		PartialCaveatInfo: info,
		Subject:           &v1.ResolvedSubject{SubjectObjectId: r.Subject.Object.ID, Permissionship: perm, PartialCaveatInfo: info},
	}
	for _, e := range r.Excluded {
		resp.ExcludedSubjectIds = append(resp.ExcludedSubjectIds, e.Object.ID)
		resp.ExcludedSubjects = append(resp.ExcludedSubjects, &v1.ResolvedSubject{
			SubjectObjectId: e.Object.ID,
			Permissionship:  v1.LookupPermissionship_LOOKUP_PERMISSIONSHIP_HAS_PERMISSION,
		})
	}
	return resp
}
