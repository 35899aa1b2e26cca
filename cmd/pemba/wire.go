package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage"
)

// Conversions between the relationship syntax the CLI reads and prints and
// the wire messages.

func objectToWire(o graph.ObjectRef) *pb.ObjectRef { return &pb.ObjectRef{Type: o.Type, Id: o.ID} }

func subjectToWire(s graph.SubjectRef) *pb.SubjectRef {
	return &pb.SubjectRef{Object: objectToWire(s.Object), Relation: s.Relation}
}

func relationshipToWire(r graph.Relationship) (*pb.Relationship, error) {
	out := &pb.Relationship{Resource: objectToWire(r.Resource), Relation: r.Relation, Subject: subjectToWire(r.Subject)}
	if r.Caveat != nil {
		out.Caveat = &pb.Caveat{Name: r.Caveat.Name}
		if len(r.Caveat.Context) > 0 {
			s, err := structpb.NewStruct(r.Caveat.Context)
			if err != nil {
				return nil, fmt.Errorf("caveat context: %w", err)
			}
			out.Caveat.Context = s
		}
	}
	if r.Expiration != nil {
		out.Expiration = timestamppb.New(*r.Expiration)
	}
	return out, nil
}

func objectFromWire(o *pb.ObjectRef) graph.ObjectRef {
	return graph.ObjectRef{Type: o.GetType(), ID: o.GetId()}
}

func subjectFromWire(s *pb.SubjectRef) graph.SubjectRef {
	return graph.SubjectRef{Object: objectFromWire(s.GetObject()), Relation: s.GetRelation()}
}

func relationshipFromWire(r *pb.Relationship) graph.Relationship {
	out := graph.Relationship{Resource: objectFromWire(r.GetResource()), Relation: r.GetRelation(), Subject: subjectFromWire(r.GetSubject())}
	if c := r.GetCaveat(); c != nil {
		out.Caveat = &graph.Caveat{Name: c.GetName(), Context: c.GetContext().AsMap()}
	}
	if e := r.GetExpiration(); e != nil {
		t := e.AsTime()
		out.Expiration = &t
	}
	return out
}

// parseCaveatFlag reads --caveat `name` or `name:{json}`.
func parseCaveatFlag(s string) (*graph.Caveat, error) {
	name, ctxText, hasCtx := strings.Cut(s, ":")
	c := &graph.Caveat{Name: name}
	if name == "" {
		return nil, fmt.Errorf("--caveat %q: want name or name:{json}", s)
	}
	if hasCtx {
		if err := json.Unmarshal([]byte(ctxText), &c.Context); err != nil {
			return nil, fmt.Errorf("--caveat %q: context is not a JSON object: %v", s, err)
		}
	}
	return c, nil
}

// parseContextFlag reads --context JSON.
func parseContextFlag(s string) (*structpb.Struct, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("--context: not a JSON object: %v", err)
	}
	st, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("--context: %v", err)
	}
	return st, nil
}

// parseExpirationFlag reads --expiration RFC3339.
func parseExpirationFlag(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("--expiration %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", s)
	}
	return &t, nil
}

// parseFilterArgs reads `RESOURCE_TYPE[:ID] [RELATION] [SUBJECT_TYPE[:ID][#RELATION]]`.
func parseFilterArgs(args []string) (*pb.RelationshipFilter, error) {
	f := &pb.RelationshipFilter{}
	if len(args) == 0 {
		return f, nil
	}
	typ, id, hasID := strings.Cut(args[0], ":")
	f.ResourceType = typ
	if hasID {
		if id == "" {
			return nil, fmt.Errorf("resource %q: empty id", args[0])
		}
		f.ResourceIds = []string{id}
	}
	if len(args) > 1 && args[1] != "" && args[1] != "*" {
		f.Relation = args[1]
	}
	if len(args) > 2 {
		s := args[2]
		obj, rel, hasRel := strings.Cut(s, "#")
		styp, sid, hasSID := strings.Cut(obj, ":")
		f.Subject = &pb.SubjectFilter{Type: styp}
		if hasSID {
			if sid == "" {
				return nil, fmt.Errorf("subject %q: empty id", s)
			}
			f.Subject.Ids = []string{sid}
		}
		if hasRel {
			f.Subject.Relation = &rel
		}
	}
	return f, nil
}

// addLabelFlag adds --label to a write command.
func addLabelFlag(cmd *cobra.Command, labels *[]string) {
	cmd.Flags().StringArrayVar(labels, "label", nil,
		"key=value recorded with the write in the audit log, e.g. --label ticket=SEC-42 (repeatable; a key may repeat)")
}

// parseLabels reads --label flags: key=value each, checked with the
// server's rules (core.ValidateLabels) so a bad one is a usage error.
func parseLabels(flags []string) ([]*pb.Label, error) {
	if len(flags) > core.MaxLabels {
		return nil, fmt.Errorf("--label: %d labels exceed the limit of %d per write", len(flags), core.MaxLabels)
	}
	var out []*pb.Label
	for _, f := range flags {
		key, value, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("--label %q: want key=value", f)
		}
		err := core.ValidateLabels([]storage.Label{{Key: key, Value: value}}, core.Field("label"))
		var fe *core.FieldError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("--label %q: %s: %v", f, fe.Path[len(fe.Path)-1], fe.Err)
		}
		out = append(out, &pb.Label{Key: key, Value: value})
	}
	return out, nil
}
