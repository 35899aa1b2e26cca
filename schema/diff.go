package schema

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Diff is what changed from one compiled schema to another. Names are
// sorted. A writer of schemas uses RemovedRelations and
// RemovedAllowedSubjects to refuse changes that would orphan stored
// relationships.
type Diff struct {
	AddedFlags, RemovedFlags             []string
	AddedDefinitions, RemovedDefinitions []string
	AddedCaveats, RemovedCaveats         []string
	ChangedCaveats                       []CaveatChange
	Definitions                          []DefinitionDiff // changed definitions present in both
	// DocChanges lists the elements present in both schemas whose doc
	// comment changed. They do not make the diff non-Empty: a comment does
	// not change what the schema means.
	DocChanges                 []DocChange
	removedDefinitionRelations []Node
}

// DocChange is an element present in both schemas, as the same kind of
// element, whose doc comment changed: a definition (Member ""), one of its
// relations or permissions, or a caveat (Definition "").
type DocChange struct {
	Definition, Member, Caveat string
	Old, New                   string
}

// CaveatChange is a caveat present in both schemas whose parameters or
// expression changed.
type CaveatChange struct {
	Name             string
	OldParams        string // `a int, b string`
	NewParams        string
	OldExpr, NewExpr string
	// The parameters added, removed, and kept with another type, in the
	// new (added, retyped) or old (removed) schema's order.
	AddedParams, RemovedParams []CaveatParam
	RetypedParams              []ParamTypeChange
}

// ParamTypeChange is a caveat parameter whose type changed.
type ParamTypeChange struct {
	Name, OldType, NewType string
}

// DefinitionDiff is what changed inside one definition.
type DefinitionDiff struct {
	Name                                 string
	AddedRelations, RemovedRelations     []string
	AddedPermissions, RemovedPermissions []string
	// RelationsToPermissions were relations and are now permissions;
	// PermissionsToRelations the reverse.
	RelationsToPermissions, PermissionsToRelations []string
	ChangedPermissions                             []PermissionChange
	AllowedSubjects                                []AllowedSubjectsChange
}

// PermissionChange is a permission whose expression changed.
type PermissionChange struct {
	Name     string
	Old, New string // canonical expression text
}

// AllowedSubjectsChange is the change to one relation's allowed types.
type AllowedSubjectsChange struct {
	Relation       string
	Added, Removed []AllowedSubject
}

// RemovedAllowedSubject is an allowed subject type dropped from a relation
// that still exists.
type RemovedAllowedSubject struct {
	Relation Node
	Subject  AllowedSubject
}

// Compare returns the difference from old to new; either may be nil (an
// empty schema).
func Compare(old, new *Schema) *Diff {
	if old == nil {
		old = &Schema{}
	}
	if new == nil {
		new = &Schema{}
	}
	d := &Diff{}
	d.AddedFlags, d.RemovedFlags = addedRemoved(old.Flags, new.Flags)
	d.AddedDefinitions, d.RemovedDefinitions = addedRemoved(old.DefinitionOrder, new.DefinitionOrder)
	d.AddedCaveats, d.RemovedCaveats = addedRemoved(old.CaveatOrder, new.CaveatOrder)
	for _, name := range sortedCopy(old.CaveatOrder) {
		oc, nc := old.Caveats[name], new.Caveats[name]
		if nc == nil {
			continue
		}
		op, np := paramsString(oc.Params), paramsString(nc.Params)
		if op != np || oc.Expression != nc.Expression {
			c := CaveatChange{Name: name, OldParams: op, NewParams: np, OldExpr: oc.Expression, NewExpr: nc.Expression}
			c.AddedParams, c.RemovedParams, c.RetypedParams = diffParams(oc.Params, nc.Params)
			d.ChangedCaveats = append(d.ChangedCaveats, c)
		}
		if oc.Doc != nc.Doc {
			d.DocChanges = append(d.DocChanges, DocChange{Caveat: name, Old: oc.Doc, New: nc.Doc})
		}
	}
	for _, name := range d.RemovedDefinitions {
		def := old.Definitions[name]
		for _, r := range sortedKeys(def.Relations) {
			d.removedDefinitionRelations = append(d.removedDefinitionRelations, Node{name, r})
		}
	}
	for _, name := range sortedCopy(old.DefinitionOrder) {
		od, nd := old.Definitions[name], new.Definitions[name]
		if nd == nil {
			continue
		}
		if dd := diffDefinition(od, nd); dd != nil {
			d.Definitions = append(d.Definitions, *dd)
		}
		d.DocChanges = append(d.DocChanges, docChanges(od, nd)...)
	}
	return d
}

// docChanges lists the doc comments that changed on a definition present
// in both schemas and on its members that kept their kind, names sorted.
func docChanges(od, nd *Definition) []DocChange {
	var out []DocChange
	if od.Doc != nd.Doc {
		out = append(out, DocChange{Definition: od.Name, Old: od.Doc, New: nd.Doc})
	}
	for _, m := range sortedCopy(od.Order) {
		or, op := od.Lookup(m)
		nr, np := nd.Lookup(m)
		switch {
		case or != nil && nr != nil && or.Doc != nr.Doc:
			out = append(out, DocChange{Definition: od.Name, Member: m, Old: or.Doc, New: nr.Doc})
		case op != nil && np != nil && op.Doc != np.Doc:
			out = append(out, DocChange{Definition: od.Name, Member: m, Old: op.Doc, New: np.Doc})
		}
	}
	return out
}

// diffParams compares a caveat's parameters by name.
func diffParams(old, new []CaveatParam) (added, removed []CaveatParam, retyped []ParamTypeChange) {
	find := func(ps []CaveatParam, name string) (CaveatParam, bool) {
		i := slices.IndexFunc(ps, func(p CaveatParam) bool { return p.Name == name })
		if i < 0 {
			return CaveatParam{}, false
		}
		return ps[i], true
	}
	for _, p := range new {
		switch o, ok := find(old, p.Name); {
		case !ok:
			added = append(added, p)
		case o.Type != p.Type:
			retyped = append(retyped, ParamTypeChange{Name: p.Name, OldType: o.Type, NewType: p.Type})
		}
	}
	for _, p := range old {
		if _, ok := find(new, p.Name); !ok {
			removed = append(removed, p)
		}
	}
	return added, removed, retyped
}

func diffDefinition(od, nd *Definition) *DefinitionDiff {
	dd := &DefinitionDiff{Name: od.Name}
	oldRels, newRels := sortedKeys(od.Relations), sortedKeys(nd.Relations)
	oldPerms, newPerms := sortedKeys(od.Permissions), sortedKeys(nd.Permissions)
	for _, r := range oldRels {
		switch {
		case nd.Relations[r] != nil:
			if added, removed := addedRemovedAllowed(od.Relations[r].Allowed, nd.Relations[r].Allowed); len(added)+len(removed) > 0 {
				dd.AllowedSubjects = append(dd.AllowedSubjects, AllowedSubjectsChange{Relation: r, Added: added, Removed: removed})
			}
		case nd.Permissions[r] != nil:
			dd.RelationsToPermissions = append(dd.RelationsToPermissions, r)
		default:
			dd.RemovedRelations = append(dd.RemovedRelations, r)
		}
	}
	for _, r := range newRels {
		if od.Relations[r] == nil {
			if od.Permissions[r] != nil {
				dd.PermissionsToRelations = append(dd.PermissionsToRelations, r)
			} else {
				dd.AddedRelations = append(dd.AddedRelations, r)
			}
		}
	}
	for _, p := range oldPerms {
		switch {
		case nd.Permissions[p] != nil:
			o, n := ExprString(od.Permissions[p].Expr), ExprString(nd.Permissions[p].Expr)
			if o != n {
				dd.ChangedPermissions = append(dd.ChangedPermissions, PermissionChange{Name: p, Old: o, New: n})
			}
		case nd.Relations[p] == nil:
			dd.RemovedPermissions = append(dd.RemovedPermissions, p)
		}
	}
	for _, p := range newPerms {
		if od.Permissions[p] == nil && od.Relations[p] == nil {
			dd.AddedPermissions = append(dd.AddedPermissions, p)
		}
	}
	empty := len(dd.AddedRelations)+len(dd.RemovedRelations)+len(dd.AddedPermissions)+len(dd.RemovedPermissions)+
		len(dd.RelationsToPermissions)+len(dd.PermissionsToRelations)+len(dd.ChangedPermissions)+len(dd.AllowedSubjects) == 0
	if empty {
		return nil
	}
	return dd
}

// Empty reports whether the schemas are the same (ignoring comments,
// order and positions).
func (d *Diff) Empty() bool {
	return len(d.AddedFlags)+len(d.RemovedFlags)+len(d.AddedDefinitions)+len(d.RemovedDefinitions)+
		len(d.AddedCaveats)+len(d.RemovedCaveats)+len(d.ChangedCaveats)+len(d.Definitions) == 0
}

// RemovedRelations lists the relations stored relationships may use that
// the new schema no longer has: on removed definitions, removed, or turned
// into permissions. Sorted.
func (d *Diff) RemovedRelations() []Node {
	out := append([]Node(nil), d.removedDefinitionRelations...)
	for _, dd := range d.Definitions {
		for _, r := range dd.RemovedRelations {
			out = append(out, Node{dd.Name, r})
		}
		for _, r := range dd.RelationsToPermissions {
			out = append(out, Node{dd.Name, r})
		}
	}
	sortNodes(out)
	return out
}

// RemovedAllowedSubjects lists the allowed subject types dropped from
// relations that exist in both schemas.
func (d *Diff) RemovedAllowedSubjects() []RemovedAllowedSubject {
	var out []RemovedAllowedSubject
	for _, dd := range d.Definitions {
		for _, c := range dd.AllowedSubjects {
			for _, a := range c.Removed {
				out = append(out, RemovedAllowedSubject{Relation: Node{dd.Name, c.Relation}, Subject: a})
			}
		}
	}
	return out
}

// String prints the diff, one change per line, `+` for additions, `-` for
// removals and `~` for changes; "no changes" when empty.
func (d *Diff) String() string {
	if d.Empty() {
		return "no changes\n"
	}
	var b strings.Builder
	for _, f := range d.AddedFlags {
		fmt.Fprintf(&b, "+ use %s\n", f)
	}
	for _, f := range d.RemovedFlags {
		fmt.Fprintf(&b, "- use %s\n", f)
	}
	for _, n := range d.AddedDefinitions {
		fmt.Fprintf(&b, "+ definition %s\n", n)
	}
	for _, n := range d.RemovedDefinitions {
		fmt.Fprintf(&b, "- definition %s\n", n)
	}
	for _, n := range d.AddedCaveats {
		fmt.Fprintf(&b, "+ caveat %s\n", n)
	}
	for _, n := range d.RemovedCaveats {
		fmt.Fprintf(&b, "- caveat %s\n", n)
	}
	for _, c := range d.ChangedCaveats {
		if c.OldParams != c.NewParams {
			fmt.Fprintf(&b, "~ caveat %s parameters: (%s) -> (%s)\n", c.Name, c.OldParams, c.NewParams)
		}
		if c.OldExpr != c.NewExpr {
			fmt.Fprintf(&b, "~ caveat %s expression: %s -> %s\n", c.Name, oneLine(c.OldExpr), oneLine(c.NewExpr))
		}
	}
	for _, dd := range d.Definitions {
		for _, r := range dd.AddedRelations {
			fmt.Fprintf(&b, "+ relation %s#%s\n", dd.Name, r)
		}
		for _, r := range dd.RemovedRelations {
			fmt.Fprintf(&b, "- relation %s#%s\n", dd.Name, r)
		}
		for _, p := range dd.AddedPermissions {
			fmt.Fprintf(&b, "+ permission %s#%s\n", dd.Name, p)
		}
		for _, p := range dd.RemovedPermissions {
			fmt.Fprintf(&b, "- permission %s#%s\n", dd.Name, p)
		}
		for _, r := range dd.RelationsToPermissions {
			fmt.Fprintf(&b, "~ %s#%s: relation -> permission\n", dd.Name, r)
		}
		for _, r := range dd.PermissionsToRelations {
			fmt.Fprintf(&b, "~ %s#%s: permission -> relation\n", dd.Name, r)
		}
		for _, c := range dd.AllowedSubjects {
			for _, a := range c.Added {
				fmt.Fprintf(&b, "+ %s#%s allows %s\n", dd.Name, c.Relation, a)
			}
			for _, a := range c.Removed {
				fmt.Fprintf(&b, "- %s#%s allows %s\n", dd.Name, c.Relation, a)
			}
		}
		for _, p := range dd.ChangedPermissions {
			fmt.Fprintf(&b, "~ permission %s#%s: %s -> %s\n", dd.Name, p.Name, p.Old, p.New)
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func paramsString(ps []CaveatParam) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Name + " " + p.Type
	}
	return strings.Join(parts, ", ")
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// addedRemoved compares two name lists as sets.
func addedRemoved(old, new []string) (added, removed []string) {
	in := func(xs []string, x string) bool { return slices.Contains(xs, x) }
	for _, n := range sortedCopy(new) {
		if !in(old, n) {
			added = append(added, n)
		}
	}
	for _, n := range sortedCopy(old) {
		if !in(new, n) {
			removed = append(removed, n)
		}
	}
	return added, removed
}

func addedRemovedAllowed(old, new []AllowedSubject) (added, removed []AllowedSubject) {
	for _, a := range new {
		if !slices.Contains(old, a) {
			added = append(added, a)
		}
	}
	for _, a := range old {
		if !slices.Contains(new, a) {
			removed = append(removed, a)
		}
	}
	return added, removed
}
