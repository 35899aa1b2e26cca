package server

import (
	"fmt"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/schema"
)

// diffSchemas lists what changes from prev (nil: no schema) to next, as
// schema.Compare reports it, one SchemaChange per line of its report.
func diffSchemas(prev, next *schema.Schema) []*pb.SchemaChange {
	d := schema.Compare(prev, next)
	var out []*pb.SchemaChange
	add := func(kind, def, name, desc string) {
		out = append(out, &pb.SchemaChange{Kind: kind, Definition: def, Name: name, Description: desc})
	}
	for _, f := range d.AddedFlags {
		add("flag added", "", f, "use "+f)
	}
	for _, f := range d.RemovedFlags {
		add("flag removed", "", f, "use "+f)
	}
	for _, n := range d.AddedDefinitions {
		add("definition added", n, "", "definition "+n)
	}
	for _, n := range d.RemovedDefinitions {
		add("definition removed", n, "", "definition "+n)
	}
	for _, n := range d.AddedCaveats {
		add("caveat added", "", n, "caveat "+n)
	}
	for _, n := range d.RemovedCaveats {
		add("caveat removed", "", n, "caveat "+n)
	}
	for _, c := range d.ChangedCaveats {
		if c.OldParams != c.NewParams {
			add("caveat changed", "", c.Name, fmt.Sprintf("caveat %s parameters: (%s) → (%s)", c.Name, c.OldParams, c.NewParams))
		}
		if c.OldExpr != c.NewExpr {
			add("caveat changed", "", c.Name, fmt.Sprintf("caveat %s expression: %s → %s", c.Name, c.OldExpr, c.NewExpr))
		}
	}
	for _, dd := range d.Definitions {
		for _, r := range dd.AddedRelations {
			add("relation added", dd.Name, r, "relation "+dd.Name+"#"+r)
		}
		for _, r := range dd.RemovedRelations {
			add("relation removed", dd.Name, r, "relation "+dd.Name+"#"+r)
		}
		for _, p := range dd.AddedPermissions {
			add("permission added", dd.Name, p, "permission "+dd.Name+"#"+p)
		}
		for _, p := range dd.RemovedPermissions {
			add("permission removed", dd.Name, p, "permission "+dd.Name+"#"+p)
		}
		for _, r := range dd.RelationsToPermissions {
			add("relation changed", dd.Name, r, dd.Name+"#"+r+": relation → permission")
		}
		for _, r := range dd.PermissionsToRelations {
			add("permission changed", dd.Name, r, dd.Name+"#"+r+": permission → relation")
		}
		for _, c := range dd.AllowedSubjects {
			for _, a := range c.Added {
				add("allowed subject added", dd.Name, c.Relation, fmt.Sprintf("%s#%s allows %s", dd.Name, c.Relation, a))
			}
			for _, a := range c.Removed {
				add("allowed subject removed", dd.Name, c.Relation, fmt.Sprintf("%s#%s allows %s", dd.Name, c.Relation, a))
			}
		}
		for _, p := range dd.ChangedPermissions {
			add("permission changed", dd.Name, p.Name, fmt.Sprintf("permission %s#%s: %s → %s", dd.Name, p.Name, p.Old, p.New))
		}
	}
	return out
}
