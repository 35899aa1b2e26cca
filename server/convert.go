package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

// Conversions between wire messages and graph/storage values. Every
// from-wire conversion validates and names the offending field.

func objectFromProto(o *pb.ObjectRef, field string) (graph.ObjectRef, error) {
	if o == nil {
		return graph.ObjectRef{}, invalidField(field, "missing")
	}
	ref := graph.ObjectRef{Type: o.GetType(), ID: o.GetId()}
	if err := ref.Validate(); err != nil {
		return graph.ObjectRef{}, invalidField(field, "%v", err)
	}
	return ref, nil
}

func subjectFromProto(s *pb.SubjectRef, field string) (graph.SubjectRef, error) {
	if s == nil || s.GetObject() == nil {
		return graph.SubjectRef{}, invalidField(field, "missing")
	}
	ref := graph.SubjectRef{Object: graph.ObjectRef{Type: s.GetObject().GetType(), ID: s.GetObject().GetId()}, Relation: s.GetRelation()}
	if ref.Relation == graph.Ellipsis {
		ref.Relation = ""
	}
	if err := ref.Validate(); err != nil {
		return graph.SubjectRef{}, invalidField(field, "%v", err)
	}
	return ref, nil
}

func relationshipFromProto(r *pb.Relationship, field string) (graph.Relationship, error) {
	if r == nil {
		return graph.Relationship{}, invalidField(field, "missing")
	}
	res := graph.Relationship{
		Resource: graph.ObjectRef{Type: r.GetResource().GetType(), ID: r.GetResource().GetId()},
		Relation: r.GetRelation(),
		Subject: graph.SubjectRef{
			Object:   graph.ObjectRef{Type: r.GetSubject().GetObject().GetType(), ID: r.GetSubject().GetObject().GetId()},
			Relation: r.GetSubject().GetRelation(),
		},
	}
	if res.Subject.Relation == graph.Ellipsis {
		res.Subject.Relation = ""
	}
	if c := r.GetCaveat(); c != nil {
		res.Caveat = &graph.Caveat{Name: c.GetName(), Context: c.GetContext().AsMap()}
	}
	return withExpiration(res, r.GetExpiration(), field, "expiration")
}

// withExpiration completes a relationship converted from either API: it
// sets the expiration from e (named field.expField in errors) and
// validates the whole relationship, as a write would.
func withExpiration(r graph.Relationship, e *timestamppb.Timestamp, field, expField string) (graph.Relationship, error) {
	if e != nil {
		if err := e.CheckValid(); err != nil {
			return graph.Relationship{}, invalidField(field+"."+expField, "%v", err)
		}
		t := e.AsTime()
		r.Expiration = &t
	}
	if err := r.Validate(); err != nil {
		return graph.Relationship{}, invalidField(field, "%v", err)
	}
	if err := storage.ValidateRelationship(r); err != nil {
		return graph.Relationship{}, invalidField(field, "%v", err)
	}
	return r, nil
}

func objectToProto(o graph.ObjectRef) *pb.ObjectRef {
	return &pb.ObjectRef{Type: o.Type, Id: o.ID}
}

func subjectToProto(s graph.SubjectRef) *pb.SubjectRef {
	return &pb.SubjectRef{Object: objectToProto(s.Object), Relation: s.Relation}
}

func relationshipToProto(r graph.Relationship) *pb.Relationship {
	out := &pb.Relationship{
		Resource: objectToProto(r.Resource),
		Relation: r.Relation,
		Subject:  subjectToProto(r.Subject),
	}
	if r.Caveat != nil {
		out.Caveat = &pb.Caveat{Name: r.Caveat.Name}
		if len(r.Caveat.Context) > 0 {
			// Stored contexts are JSON values, which structpb accepts.
			if s, err := structpb.NewStruct(r.Caveat.Context); err == nil {
				out.Caveat.Context = s
			}
		}
	}
	if r.Expiration != nil {
		out.Expiration = timestamppb.New(*r.Expiration)
	}
	return out
}

// contextFromProto returns a caveat context; nil for an empty one.
func contextFromProto(s *structpb.Struct) map[string]any {
	if s == nil || len(s.GetFields()) == 0 {
		return nil
	}
	return s.AsMap()
}

func filterFromProto(f *pb.RelationshipFilter, field string) (storage.Filter, error) {
	if f == nil {
		return storage.Filter{}, nil
	}
	out := storage.Filter{ResourceType: f.GetResourceType(), ResourceIDs: f.GetResourceIds(), Relation: f.GetRelation()}
	if len(out.ResourceIDs) > 0 && out.ResourceType == "" {
		return storage.Filter{}, invalidField(field+".resource_ids", "requires resource_type")
	}
	if sf := f.GetSubject(); sf != nil {
		if sf.GetType() == "" {
			return storage.Filter{}, invalidField(field+".subject.type", "missing")
		}
		out.Subject = &storage.SubjectFilter{Type: sf.GetType(), IDs: sf.GetIds()}
		if sf.Relation != nil {
			rel := sf.GetRelation()
			if rel == graph.Ellipsis {
				rel = ""
			}
			out.Subject.Relation = &rel
		}
	}
	if err := checkFilterNames(out); err != nil {
		return storage.Filter{}, invalidField(field, "%v", err)
	}
	return out, nil
}

// checkFilterNames validates the names and IDs in a filter with the same
// rules as relationships, so a typo is reported instead of matching nothing.
func checkFilterNames(f storage.Filter) error {
	if f.ResourceType != "" {
		if err := (graph.ObjectRef{Type: f.ResourceType, ID: "x"}).Validate(); err != nil {
			return err
		}
	}
	for _, id := range f.ResourceIDs {
		if err := (graph.ObjectRef{Type: f.ResourceType, ID: id}).Validate(); err != nil {
			return err
		}
	}
	if f.Relation != "" {
		probe := graph.Relationship{Resource: graph.ObjectRef{Type: "probe", ID: "x"}, Relation: f.Relation,
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: "probe", ID: "x"}}}
		if err := probe.Validate(); err != nil {
			return err
		}
	}
	if s := f.Subject; s != nil {
		for _, id := range append([]string{"x"}, s.IDs...) {
			sub := graph.SubjectRef{Object: graph.ObjectRef{Type: s.Type, ID: id}}
			if s.Relation != nil && id != graph.Wildcard {
				sub.Relation = *s.Relation
			}
			if err := sub.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func preconditionsFromProto(ps []*pb.Precondition) ([]storage.Precondition, error) {
	out := make([]storage.Precondition, 0, len(ps))
	for i, p := range ps {
		field := fmt.Sprintf("preconditions[%d]", i)
		var must bool
		switch p.GetOperation() {
		case pb.Precondition_OPERATION_MUST_MATCH:
			must = true
		case pb.Precondition_OPERATION_MUST_NOT_MATCH:
		default:
			return nil, invalidField(field+".operation", "must be MUST_MATCH or MUST_NOT_MATCH")
		}
		if p.GetFilter() == nil {
			return nil, invalidField(field+".filter", "missing")
		}
		f, err := filterFromProto(p.GetFilter(), field+".filter")
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

func opToProto(op storage.Op) pb.RelationshipUpdate_Operation {
	switch op {
	case storage.OpCreate:
		return pb.RelationshipUpdate_OPERATION_CREATE
	case storage.OpTouch:
		return pb.RelationshipUpdate_OPERATION_TOUCH
	case storage.OpDelete:
		return pb.RelationshipUpdate_OPERATION_DELETE
	}
	return pb.RelationshipUpdate_OPERATION_UNSPECIFIED
}

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// labelsFromProto returns a request's labels; core.ValidateMetadata
// checks them with the rest of the write.
func labelsFromProto(ls []*pb.Label) []storage.Label {
	if len(ls) == 0 {
		return nil
	}
	out := make([]storage.Label, len(ls))
	for i, l := range ls {
		out[i] = storage.Label{Key: l.GetKey(), Value: l.GetValue()}
	}
	return out
}

func labelsToProto(ls []storage.Label) []*pb.Label {
	if len(ls) == 0 {
		return nil
	}
	out := make([]*pb.Label, len(ls))
	for i, l := range ls {
		out[i] = &pb.Label{Key: l.Key, Value: l.Value}
	}
	return out
}

// writeMetadata is the metadata a write request records: the caller's
// token name as the actor, and the request's reason and labels.
func writeMetadata(ctx context.Context, reason string, labels []*pb.Label) storage.WriteMetadata {
	return storage.WriteMetadata{Actor: actorFrom(ctx), Reason: reason, Labels: labelsFromProto(labels)}
}
