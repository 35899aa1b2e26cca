package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/audit"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// maxAuditAnchors caps the anchors of one VerifyAudit.
const maxAuditAnchors = 1000

type auditService struct {
	pb.UnimplementedAuditServiceServer
	s *Server
}

func (svc *auditService) ReadAudit(req *pb.ReadAuditRequest, stream pb.AuditService_ReadAuditServer) error {
	s := svc.s
	if err := s.auditEnabled(); err != nil {
		return err
	}
	q, err := s.auditQuery(req)
	if err != nil {
		return err
	}
	// audit.Read streams from the engine; each event is sent before the
	// next is read, so the server holds one at a time.
	for ev, err := range audit.Read(stream.Context(), s.engine, q) {
		if err != nil {
			return auditQueryError(err)
		}
		if err := stream.Send(&pb.ReadAuditResponse{Event: s.auditEventToProto(ev), Cursor: ev.Cursor}); err != nil {
			return err
		}
	}
	return nil
}

func (svc *auditService) VerifyAudit(ctx context.Context, req *pb.VerifyAuditRequest) (*pb.VerifyAuditResponse, error) {
	s := svc.s
	if err := s.auditEnabled(); err != nil {
		return nil, err
	}
	if n := len(req.GetAnchors()); n > maxAuditAnchors {
		return nil, invalidField("anchors", "%d anchors exceed the limit of %d per request", n, maxAuditAnchors)
	}
	anchors := make([]auditlog.Anchor, len(req.GetAnchors()))
	for i, text := range req.GetAnchors() {
		a, err := auditlog.ParseAnchor(text)
		if err != nil {
			return nil, inField(fmt.Sprintf("anchors[%d]", i), err)
		}
		anchors[i] = a
	}
	res, err := auditlog.Verify(ctx, s.engine, anchors...)
	if err != nil {
		return nil, err
	}
	out := &pb.VerifyAuditResponse{
		Entries:       uint64(res.Entries),
		FirstRevision: uint64(res.First),
		LastRevision:  uint64(res.Last),
		Intact:        res.Broken == nil,
	}
	if res.Entries > 0 {
		out.Head = auditlog.Anchor{Revision: res.Last, Hash: res.Head}.String()
	}
	if res.Broken != nil {
		out.BrokenRevision, out.BrokenReason = uint64(res.Broken.Revision), res.Broken.Reason
	}
	return out, nil
}

// auditQuery translates a ReadAudit request into an audit.Query,
// refusing what is malformed with the wire field's name. audit.Read
// checks the query again.
func (s *Server) auditQuery(req *pb.ReadAuditRequest) (audit.Query, error) {
	q := audit.Query{
		ResourceType: req.GetResourceType(), ResourceID: req.GetResourceId(), Relation: req.GetRelation(),
		SubjectType: req.GetSubjectType(), SubjectID: req.GetSubjectId(), SubjectRelation: req.GetSubjectRelation(),
		Actor:         req.GetActor(),
		Labels:        labelsFromProto(req.GetLabels()),
		NewestFirst:   req.GetNewestFirst(),
		After:         req.GetCursor(),
		Limit:         s.requests.AuditLimit(int(req.GetLimit())),
		NoExpirations: req.GetExcludeExpirations(),
	}
	if err := checkAuditNames(q); err != nil {
		return audit.Query{}, err
	}
	if err := core.ValidateLabels(q.Labels, core.Field("labels")); err != nil {
		return audit.Query{}, err
	}
	var err error
	if q.Since, err = auditTime(req.GetSince(), "since"); err != nil {
		return audit.Query{}, err
	}
	if q.Until, err = auditTime(req.GetUntil(), "until"); err != nil {
		return audit.Query{}, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return audit.Query{}, invalidField("until", "%s is not after since (%s)", q.Until.Format(time.RFC3339Nano), q.Since.Format(time.RFC3339Nano))
	}
	if q.MinRevision, err = s.auditRevision(req.GetFromRevision(), "from_revision"); err != nil {
		return audit.Query{}, err
	}
	if q.MaxRevision, err = s.auditRevision(req.GetToRevision(), "to_revision"); err != nil {
		return audit.Query{}, err
	}
	if q.MinRevision != 0 && q.MaxRevision != 0 && q.MinRevision > q.MaxRevision {
		return audit.Query{}, invalidField("to_revision", "revision %d is before from_revision's %d", q.MaxRevision, q.MinRevision)
	}
	for i, k := range req.GetKinds() {
		kind, ok := eventKindFromProto(k)
		if !ok {
			return audit.Query{}, invalidField(fmt.Sprintf("kinds[%d]", i), "unknown event kind %d: want CREATED, TOUCHED, DELETED, EXPIRED or SCHEMA", k)
		}
		q.Kinds = append(q.Kinds, kind)
	}
	return q, nil
}

// auditTime reads an optional timestamp field.
func auditTime(ts *timestamppb.Timestamp, field string) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, inField(field, err)
	}
	return ts.AsTime(), nil
}

// auditRevision reads an optional zookie field.
func (s *Server) auditRevision(z *pb.Zookie, field string) (storage.Revision, error) {
	if z == nil {
		return 0, nil
	}
	return s.revs.DecodeZookie(z.GetToken(), core.Field(field))
}

// checkAuditNames checks the names and IDs an audit query filters on
// with the rules of relationships, so a typo is refused instead of
// matching nothing. The schema is not consulted: the log holds changes to
// types and relations a later schema may have removed.
func checkAuditNames(q audit.Query) error {
	switch {
	case q.ResourceID != "" && q.ResourceType == "":
		return invalidField("resource_id", "requires resource_type")
	case q.SubjectID != "" && q.SubjectType == "":
		return invalidField("subject_id", "requires subject_type")
	case q.SubjectRelation != "" && q.SubjectType == "":
		return invalidField("subject_relation", "requires subject_type")
	}
	for _, c := range []struct {
		field, value string
		validate     func(string) error
	}{
		{"resource_type", q.ResourceType, graph.ValidateTypeName},
		{"resource_id", q.ResourceID, func(v string) error { return graph.ValidateObjectID(v, false) }},
		{"relation", q.Relation, graph.ValidateRelationName},
		{"subject_type", q.SubjectType, graph.ValidateTypeName},
		{"subject_id", q.SubjectID, func(v string) error { return graph.ValidateObjectID(v, true) }},
		{"subject_relation", q.SubjectRelation, func(v string) error {
			if v == graph.Ellipsis {
				return nil
			}
			return graph.ValidateRelationName(v)
		}},
	} {
		if c.value != "" {
			if err := c.validate(c.value); err != nil {
				return inField(c.field, err)
			}
		}
	}
	return nil
}

// auditQueryFields names the fields of an audit.Query that ReadAudit
// calls differently; the others have the same name.
var auditQueryFields = map[string]string{
	"after":          "cursor",
	"from":           "from_revision",
	"to":             "to_revision",
	"min_revision":   "from_revision",
	"max_revision":   "to_revision",
	"no_expirations": "exclude_expirations",
}

// auditQueryError renames the field of a query audit.Read refused to
// ReadAudit's name for it; other errors are wrapped with context.
func auditQueryError(err error) error {
	var fe *core.FieldError
	if errors.As(err, &fe) {
		path := fe.Path.Child()
		if len(path) > 0 {
			if name, ok := auditQueryFields[path[0]]; ok {
				path[0] = name
			}
		}
		return core.Invalid(path, fe.Err)
	}
	return fmt.Errorf("read audit log: %w", err)
}

func (s *Server) auditEventToProto(ev audit.Event) *pb.AuditEvent {
	out := &pb.AuditEvent{
		Kind:      eventKindToProto(ev.Kind),
		Time:      timestamp(ev.Time),
		Revision:  s.zookie(ev.Revision),
		EntryKind: entryKindToProto(ev.EntryKind),
		Actor:     ev.Metadata.Actor,
		Reason:    ev.Metadata.Reason,
		Labels:    labelsToProto(ev.Metadata.Labels),
		EntryHash: hex.EncodeToString(ev.Hash[:]),
	}
	if ev.Kind == audit.SchemaChanged {
		c := ev.Schema
		out.SchemaChange = &pb.AuditSchemaChange{Added: c.Added, Kind: c.Kind, Name: c.Name, Detail: c.Detail}
	} else {
		out.Relationship = relationshipToProto(ev.Relationship)
	}
	return out
}

var eventKinds = []struct {
	wire pb.AuditEventKind
	kind audit.EventKind
}{
	{pb.AuditEventKind_AUDIT_EVENT_KIND_CREATED, audit.Created},
	{pb.AuditEventKind_AUDIT_EVENT_KIND_TOUCHED, audit.Touched},
	{pb.AuditEventKind_AUDIT_EVENT_KIND_DELETED, audit.Deleted},
	{pb.AuditEventKind_AUDIT_EVENT_KIND_EXPIRED, audit.Expired},
	{pb.AuditEventKind_AUDIT_EVENT_KIND_SCHEMA, audit.SchemaChanged},
}

func eventKindFromProto(k pb.AuditEventKind) (audit.EventKind, bool) {
	for _, e := range eventKinds {
		if e.wire == k {
			return e.kind, true
		}
	}
	return 0, false
}

func eventKindToProto(k audit.EventKind) pb.AuditEventKind {
	for _, e := range eventKinds {
		if e.kind == k {
			return e.wire
		}
	}
	return pb.AuditEventKind_AUDIT_EVENT_KIND_UNSPECIFIED
}

func entryKindToProto(k storage.AuditKind) pb.AuditEntryKind {
	switch k {
	case storage.AuditWrite:
		return pb.AuditEntryKind_AUDIT_ENTRY_KIND_WRITE
	case storage.AuditDelete:
		return pb.AuditEntryKind_AUDIT_ENTRY_KIND_DELETE
	case storage.AuditImport:
		return pb.AuditEntryKind_AUDIT_ENTRY_KIND_IMPORT
	case storage.AuditSchema:
		return pb.AuditEntryKind_AUDIT_ENTRY_KIND_SCHEMA
	}
	return pb.AuditEntryKind_AUDIT_ENTRY_KIND_UNSPECIFIED
}
