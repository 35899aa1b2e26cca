package server

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pembadb/pemba/core"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/schema"
)

// explorerService serves pemba.v1.ExplorerService: who the caller is, and
// the object search behind the access explorer's type-ahead.
type explorerService struct {
	pb.UnimplementedExplorerServiceServer
	s *Server
}

func (svc *explorerService) WhoAmI(ctx context.Context, _ *pb.WhoAmIRequest) (*pb.WhoAmIResponse, error) {
	return &pb.WhoAmIResponse{Name: actorFrom(ctx), Version: svc.s.cfg.Version, Audit: !svc.s.cfg.DisableAudit}, nil
}

var objectRoles = map[pb.ObjectRole]core.ObjectRole{
	pb.ObjectRole_OBJECT_ROLE_UNSPECIFIED: core.AnyRole,
	pb.ObjectRole_OBJECT_ROLE_RESOURCE:    core.ResourceRole,
	pb.ObjectRole_OBJECT_ROLE_SUBJECT:     core.SubjectRole,
}

func (svc *explorerService) SearchObjects(ctx context.Context, req *pb.SearchObjectsRequest) (*pb.SearchObjectsResponse, error) {
	role, ok := objectRoles[req.GetRole()]
	if !ok {
		return nil, invalidField("role", "unknown role %d", req.GetRole())
	}
	rev, snap, err := svc.s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	q := core.SearchQuery{Type: req.GetType(), Prefix: req.GetPrefix(), After: req.GetAfter(), Role: role,
		Limit: int(min(req.GetLimit(), core.MaxSearchLimit+1)), Now: time.Now()}
	if err := q.Validate(snap.Schema); err != nil {
		return nil, err
	}
	objects, err := core.SearchObjects(ctx, snap.Reader, q)
	if err != nil {
		return nil, err
	}
	resp := &pb.SearchObjectsResponse{ReadAt: svc.s.zookie(rev)}
	for _, o := range objects {
		resp.Objects = append(resp.Objects, &pb.ObjectRef{Type: o.Type, Id: o.ID})
	}
	return resp, nil
}

func (svc *explorerService) DescribeSchema(ctx context.Context, req *pb.DescribeSchemaRequest) (*pb.DescribeSchemaResponse, error) {
	rev, snap, err := svc.s.snapshotFor(ctx, req.GetConsistency())
	if err != nil {
		return nil, err
	}
	return describeSchema(snap.Schema, svc.s.zookie(rev)), nil
}

// describeSchema renders a compiled schema for DescribeSchema.
func describeSchema(sch *schema.Schema, readAt *pb.Zookie) *pb.DescribeSchemaResponse {
	resp := &pb.DescribeSchemaResponse{Text: sch.String(), ReadAt: readAt}
	for _, name := range sch.DefinitionOrder {
		def := sch.Definition(name)
		d := &pb.SchemaDefinition{Name: def.Name, Doc: docText(def.Doc)}
		for _, member := range def.Order {
			if rel := def.Relations[member]; rel != nil {
				r := &pb.SchemaRelation{Name: rel.Name, Doc: docText(rel.Doc)}
				for _, a := range rel.Allowed {
					r.Allowed = append(r.Allowed, &pb.SchemaAllowedSubject{Type: a.Type, Relation: a.Relation,
						Wildcard: a.Wildcard, Caveat: a.Caveat, Expiration: a.Expiration, Text: a.String()})
				}
				d.Relations = append(d.Relations, r)
			}
			if perm := def.Permissions[member]; perm != nil {
				p := &pb.SchemaPermission{Name: perm.Name, Doc: docText(perm.Doc), Expression: schema.ExprString(perm.Expr)}
				collectUses(perm.Expr, p)
				d.Permissions = append(d.Permissions, p)
			}
		}
		resp.Definitions = append(resp.Definitions, d)
	}
	for _, name := range sch.CaveatOrder {
		c := sch.Caveat(name)
		out := &pb.SchemaCaveat{Name: c.Name, Doc: docText(c.Doc), Expression: c.Expression}
		for _, p := range c.Params {
			out.Parameters = append(out.Parameters, &pb.SchemaCaveatParameter{Name: p.Name, Type: p.Type})
		}
		resp.Caveats = append(resp.Caveats, out)
	}
	return resp
}

// collectUses adds the names and arrows e uses to p, each once.
func collectUses(e schema.Expr, p *pb.SchemaPermission) {
	switch e := e.(type) {
	case *schema.Union:
		for _, c := range e.Children {
			collectUses(c, p)
		}
	case *schema.Intersection:
		for _, c := range e.Children {
			collectUses(c, p)
		}
	case *schema.Exclusion:
		collectUses(e.Base, p)
		collectUses(e.Subtracted, p)
	case *schema.RelationRef:
		if !slices.Contains(p.Uses, e.Name) {
			p.Uses = append(p.Uses, e.Name)
		}
	case *schema.Arrow:
		fn := "any"
		if e.Func == schema.ArrowAll {
			fn = "all"
		}
		a := &pb.SchemaArrow{Tupleset: e.Tupleset, Target: e.Target, Function: fn}
		if !slices.ContainsFunc(p.Arrows, func(b *pb.SchemaArrow) bool { return proto.Equal(a, b) }) {
			p.Arrows = append(p.Arrows, a)
		}
	}
}

// docText is a doc comment's text without its markers: `/** ... */`,
// a leading `*` on each line, or `//`.
func docText(doc string) string {
	doc = strings.TrimSpace(doc)
	var lines []string
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(line, "/**")
		line = strings.TrimPrefix(line, "/*")
		line = strings.TrimSuffix(line, "*/")
		line = strings.TrimPrefix(line, "//")
		line = strings.TrimPrefix(strings.TrimSpace(line), "* ")
		if line = strings.TrimSpace(line); line != "*" && line != "" {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}
