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

// auditQuery decodes a ReadAudit request's wire values (timestamps,
// zookies, kinds) into an audit.Query, refusing what cannot be decoded
// with the wire field's name; audit.Read validates the query itself, and
// auditQueryError renames its fields.
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
	var err error
	if q.Since, err = auditTime(req.GetSince(), "since"); err != nil {
		return audit.Query{}, err
	}
	if q.Until, err = auditTime(req.GetUntil(), "until"); err != nil {
		return audit.Query{}, err
	}
	if q.MinRevision, err = s.auditRevision(req.GetFromRevision(), "from_revision"); err != nil {
		return audit.Query{}, err
	}
	if q.MaxRevision, err = s.auditRevision(req.GetToRevision(), "to_revision"); err != nil {
		return audit.Query{}, err
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
