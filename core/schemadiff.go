package core

import (
	"fmt"
	"strings"

	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// SchemaChanges is what a schema write records in the audit log: the
// elements next adds to prev and removes from it (prev nil: no schema),
// as schema.Compare finds them.
//
//   - A definition added or removed is one "definition" change followed by
//     one change for each of its relations and permissions, so the log
//     answers "when did document#viewer appear" however it appeared.
//   - A relation, permission or caveat that changed — its allowed
//     subjects, its expression, its parameters, or a relation turned into
//     a permission — is removed and added again; the addition's Detail is
//     its new text on one line (`relation viewer: user | group#member`,
//     `permission view = viewer + edit`, `caveat c(a int) { a > 1 }`).
//     Other changes have no Detail.
//   - `use` flags are not schema elements and are not recorded.
//
// Changes come in a fixed order: definitions added, definitions removed,
// caveats, then each changed definition's members, names sorted.
func SchemaChanges(prev, next *schema.Schema) []storage.SchemaChange {
	if prev == nil {
		prev = &schema.Schema{}
	}
	if next == nil {
		next = &schema.Schema{}
	}
	d := schema.Compare(prev, next)
	var out []storage.SchemaChange
	add := func(added bool, kind, name, detail string) {
		out = append(out, storage.SchemaChange{Added: added, Kind: kind, Name: name, Detail: detail})
	}
	whole := func(added bool, def *schema.Definition) {
		add(added, "definition", def.Name, "")
		for _, m := range def.Order {
			if r, _ := def.Lookup(m); r != nil {
				add(added, "relation", def.Name+"#"+m, "")
			} else {
				add(added, "permission", def.Name+"#"+m, "")
			}
		}
	}
	for _, n := range d.AddedDefinitions {
		whole(true, next.Definitions[n])
	}
	for _, n := range d.RemovedDefinitions {
		whole(false, prev.Definitions[n])
	}
	for _, n := range d.AddedCaveats {
		add(true, "caveat", n, "")
	}
	for _, n := range d.RemovedCaveats {
		add(false, "caveat", n, "")
	}
	for _, c := range d.ChangedCaveats {
		add(false, "caveat", c.Name, "")
		add(true, "caveat", c.Name, caveatText(next.Caveats[c.Name]))
	}
	for _, dd := range d.Definitions {
		def := next.Definitions[dd.Name]
		name := func(m string) string { return dd.Name + "#" + m }
		replaced := func(oldKind, m string) {
			add(false, oldKind, name(m), "")
			if r, p := def.Lookup(m); r != nil {
				add(true, "relation", name(m), relationText(r))
			} else {
				add(true, "permission", name(m), permissionText(p))
			}
		}
		for _, r := range dd.AddedRelations {
			add(true, "relation", name(r), "")
		}
		for _, r := range dd.RemovedRelations {
			add(false, "relation", name(r), "")
		}
		for _, c := range dd.AllowedSubjects {
			replaced("relation", c.Relation)
		}
		for _, r := range dd.RelationsToPermissions {
			replaced("relation", r)
		}
		for _, p := range dd.PermissionsToRelations {
			replaced("permission", p)
		}
		for _, p := range dd.AddedPermissions {
			add(true, "permission", name(p), "")
		}
		for _, p := range dd.RemovedPermissions {
			add(false, "permission", name(p), "")
		}
		for _, p := range dd.ChangedPermissions {
			replaced("permission", p.Name)
		}
	}
	return out
}

// relationText is a relation as its definition declares it.
func relationText(r *schema.Relation) string {
	types := make([]string, len(r.Allowed))
	for i, a := range r.Allowed {
		types[i] = a.String()
	}
	return "relation " + r.Name + ": " + strings.Join(types, " | ")
}

// permissionText is a permission as its definition declares it.
func permissionText(p *schema.Permission) string {
	return "permission " + p.Name + " = " + schema.ExprString(p.Expr)
}

// caveatText is a caveat's declaration on one line.
func caveatText(c *schema.Caveat) string {
	params := make([]string, len(c.Params))
	for i, p := range c.Params {
		params[i] = p.Name + " " + p.Type
	}
	return fmt.Sprintf("caveat %s(%s) { %s }", c.Name, strings.Join(params, ", "), strings.Join(strings.Fields(c.Expression), " "))
}
