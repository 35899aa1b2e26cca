package validationfile

import (
	"slices"
	"sort"
	"strings"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/expand"
	"github.com/pembadb/pemba/graph"
)

// member is a subject found to hold a permission, with the relations it
// was found on (its provenance).
type member struct {
	via []string
}

// members computes the exact set of subjects holding perm on res, keyed by
// their rendering in validation files (`user:tom`, `user:tom[caveat]`,
// `group:eng#member`, `user:* - {user:banned}`), with provenance from the
// Expand tree. The set itself comes from LookupSubjects for every subject
// type and subject relation the schema can hold, so it agrees with Check.
func (r *runner) members(res graph.ObjectRef, perm string) (map[string]member, *expand.Node, error) {
	tree, err := r.expand(res, perm)
	if err != nil {
		return nil, nil, err
	}
	prov := provenance(tree)
	self := res.String() + "#" + perm
	out := map[string]member{}
	for _, st := range r.subjectTypes() {
		err := r.engine.LookupSubjects(r.ctx, r.snap, check.LookupSubjectsRequest{
			Resource: res, Permission: perm, SubjectType: st.Object.Type, SubjectRelation: st.Relation, Now: r.now,
		}, func(s check.SubjectResult) bool {
			key := s.Subject.String()
			if key == self {
				return true
			}
			p := prov[key]
			name := key
			if s.Permissionship == check.Conditional && len(p.caveats) > 0 {
				name += "[" + strings.Join(p.caveats, ",") + "]"
			}
			if s.Subject.IsWildcard() && len(s.Excluded) > 0 {
				ex := make([]string, len(s.Excluded))
				for i, x := range s.Excluded {
					ex[i] = x.String()
				}
				name += " - {" + strings.Join(ex, ", ") + "}"
			}
			out[name] = member{via: p.via}
			return true
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return out, tree, nil
}

// subjectTypes lists every (type, relation) a subject can have under the
// schema: each definition as a plain object, and each subject set some
// relation allows.
func (r *runner) subjectTypes() []graph.SubjectRef {
	s := r.snap.Schema
	seen := map[graph.SubjectRef]bool{}
	var out []graph.SubjectRef
	add := func(typ, rel string) {
		k := graph.SubjectRef{Object: graph.ObjectRef{Type: typ}, Relation: rel}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, name := range s.DefinitionOrder {
		add(name, "")
	}
	for _, name := range s.DefinitionOrder {
		def := s.Definitions[name]
		for _, rel := range def.Relations {
			for _, a := range rel.Allowed {
				if a.Relation != "" {
					add(a.Type, a.Relation)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// found is what the Expand tree says about one subject: the relations it
// appears on and the caveats on the way to it.
type found struct {
	via     []string
	caveats []string
}

// provenance walks the tree's granting branches (not the subtracted side of
// exclusions, not the tupleset objects of arrows) and records, for every
// subject leaf, the object#relation it appears on. Nodes marked Seen are
// followed to their first expansion.
func provenance(root *expand.Node) map[string]found {
	expanded := map[string]*expand.Node{}
	var index func(n *expand.Node)
	index = func(n *expand.Node) {
		if (n.Op == expand.OpRelation || n.Op == expand.OpPermission) && !n.Seen {
			expanded[n.Object.String()+"#"+n.Relation] = n
		}
		for _, c := range n.Children {
			index(c)
		}
	}
	index(root)

	out := map[string]found{}
	visiting := map[*expand.Node]bool{}
	var walk func(n *expand.Node, caveats []string)
	walk = func(n *expand.Node, caveats []string) {
		if n.Seen {
			if orig := expanded[n.Object.String()+"#"+n.Relation]; orig != nil {
				n = orig
			}
		}
		if visiting[n] {
			return
		}
		visiting[n] = true
		defer delete(visiting, n)
		switch n.Op {
		case expand.OpExclusion:
			if len(n.Children) > 0 {
				walk(n.Children[0], caveats)
			}
		case expand.OpArrow:
			for _, obj := range n.Children { // tupleset leaves: walk what they reach
				for _, c := range obj.Children {
					walk(c, withCaveat(caveats, obj.Caveat))
				}
			}
		case expand.OpRelation:
			onr := n.Object.String() + "#" + n.Relation
			for _, leaf := range n.Children {
				cav := withCaveat(caveats, leaf.Caveat)
				key := leaf.Subject.String()
				f := out[key]
				if !slices.Contains(f.via, onr) {
					f.via = append(f.via, onr)
				}
				for _, c := range cav {
					if !slices.Contains(f.caveats, c) {
						f.caveats = append(f.caveats, c)
					}
				}
				out[key] = f
				for _, c := range leaf.Children {
					walk(c, cav)
				}
			}
		default:
			for _, c := range n.Children {
				walk(c, caveats)
			}
		}
	}
	walk(root, nil)
	for k, f := range out {
		sort.Strings(f.via)
		sort.Strings(f.caveats)
		out[k] = f
	}
	return out
}

func withCaveat(caveats []string, c string) []string {
	if c == "" {
		return caveats
	}
	return append(slices.Clone(caveats), c)
}
