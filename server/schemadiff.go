package server

import (
	"slices"
	"sort"
	"strings"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/schema"
)

// diffSchemas lists what changes from prev (nil: no schema) to next:
// definitions, relations, permissions and caveats added, removed or
// changed, in a stable order.
func diffSchemas(prev, next *schema.Schema) []*pb.SchemaChange {
	if prev == nil {
		prev = &schema.Schema{}
	}
	var out []*pb.SchemaChange
	add := func(kind, def, name, desc string) {
		out = append(out, &pb.SchemaChange{Kind: kind, Definition: def, Name: name, Description: desc})
	}
	for _, name := range unionKeys(prev.Definitions, next.Definitions) {
		p, n := prev.Definitions[name], next.Definitions[name]
		switch {
		case p == nil:
			add("definition added", name, "", "definition "+name+" added")
			continue
		case n == nil:
			add("definition removed", name, "", "definition "+name+" removed")
			continue
		}
		for _, r := range unionKeys(p.Relations, n.Relations) {
			pr, nr := p.Relations[r], n.Relations[r]
			switch {
			case pr == nil:
				add("relation added", name, r, "relation "+name+"#"+r+": "+allowedList(nr))
			case nr == nil:
				add("relation removed", name, r, "relation "+name+"#"+r+" removed")
			case !slices.Equal(pr.Allowed, nr.Allowed):
				add("relation changed", name, r, "relation "+name+"#"+r+": "+allowedList(pr)+" → "+allowedList(nr))
			}
		}
		for _, q := range unionKeys(p.Permissions, n.Permissions) {
			pp, np := p.Permissions[q], n.Permissions[q]
			switch {
			case pp == nil:
				add("permission added", name, q, "permission "+name+"#"+q+" = "+schema.ExprString(np.Expr))
			case np == nil:
				add("permission removed", name, q, "permission "+name+"#"+q+" removed")
			default:
				a, b := schema.ExprString(pp.Expr), schema.ExprString(np.Expr)
				if a != b {
					add("permission changed", name, q, "permission "+name+"#"+q+": "+a+" → "+b)
				}
			}
		}
	}
	for _, name := range unionKeys(prev.Caveats, next.Caveats) {
		p, n := prev.Caveats[name], next.Caveats[name]
		switch {
		case p == nil:
			add("caveat added", "", name, "caveat "+name+" added")
		case n == nil:
			add("caveat removed", "", name, "caveat "+name+" removed")
		case p.Expression != n.Expression || !slices.Equal(p.Params, n.Params):
			add("caveat changed", "", name, "caveat "+name+": "+strings.TrimSpace(n.Expression))
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func allowedList(r *schema.Relation) string {
	parts := make([]string, len(r.Allowed))
	for i, a := range r.Allowed {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}
