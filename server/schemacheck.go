package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// validateAgainstSchema checks that sch accepts r (schema.ValidateRelationship),
// naming the request field: field is where r sits in the request.
func validateAgainstSchema(sch *schema.Schema, r graph.Relationship, field string) error {
	err := sch.ValidateRelationship(r)
	var re *schema.RelationshipError
	if errors.As(err, &re) {
		part := re.Field
		if part == "subject.type" {
			part = "subject.object.type" // the wire message nests the object
		}
		return invalidField(field+"."+part, "%s", re.Message)
	}
	return err
}

// orphanLimit caps how many orphaned relationships one orphan count reads.
const orphanLimit = 10000

// orphan is a class of stored relationships a new schema would not accept.
type orphan struct {
	what  string // e.g. `relation document#viewer` or `subject type user on document#viewer`
	count int    // relationships found, capped at orphanLimit
}

func (o orphan) String() string {
	n := fmt.Sprint(o.count)
	if o.count >= orphanLimit {
		n = fmt.Sprintf("at least %d", orphanLimit)
	}
	return fmt.Sprintf("%s still has %s relationship(s)", o.what, n)
}

// findOrphans lists the stored relationships (read through reader) that
// relations removed or narrowed by next would orphan. Only relations of
// prev are examined: relationships can only exist where prev allowed them.
func findOrphans(ctx context.Context, reader storage.Reader, prev, next *schema.Schema) ([]orphan, error) {
	var out []orphan
	count := func(f storage.Filter, keep func(graph.Relationship) bool) (int, error) {
		n := 0
		for r, err := range reader.QueryRelationships(ctx, f, storage.QueryOptions{}) {
			if err != nil {
				return 0, err
			}
			if keep == nil || keep(r) {
				n++
			}
			if n >= orphanLimit {
				break
			}
		}
		return n, nil
	}
	for _, typ := range prev.DefinitionOrder {
		pdef := prev.Definitions[typ]
		ndef := next.Definition(typ)
		rels := make([]string, 0, len(pdef.Relations))
		for name := range pdef.Relations {
			rels = append(rels, name)
		}
		sort.Strings(rels)
		for _, name := range rels {
			var nrel *schema.Relation
			if ndef != nil {
				nrel = ndef.Relations[name]
			}
			if nrel == nil {
				n, err := count(storage.Filter{ResourceType: typ, Relation: name}, nil)
				if err != nil {
					return nil, err
				}
				if n > 0 {
					out = append(out, orphan{what: fmt.Sprintf("relation %s#%s", typ, name), count: n})
				}
				continue
			}
			if !narrowed(pdef.Relations[name], nrel) {
				continue
			}
			// The relation stays but accepts less: count stored
			// relationships it no longer accepts.
			n, err := count(storage.Filter{ResourceType: typ, Relation: name}, func(r graph.Relationship) bool {
				return !accepts(next, nrel, r)
			})
			if err != nil {
				return nil, err
			}
			if n > 0 {
				out = append(out, orphan{what: fmt.Sprintf("relation %s#%s (subject types it no longer allows)", typ, name), count: n})
			}
		}
	}
	return out, nil
}

// accepts reports whether rel in sch accepts the stored relationship r.
func accepts(sch *schema.Schema, rel *schema.Relation, r graph.Relationship) bool {
	caveat := ""
	if r.Caveat != nil {
		caveat = r.Caveat.Name
	}
	for _, a := range rel.AllowedFor(r.Subject.Object.Type, r.Subject.Relation, r.Subject.IsWildcard()) {
		if a.Caveat == caveat && (r.Expiration == nil || a.Expiration) {
			return true
		}
	}
	return false
}

// narrowed reports whether next drops any subject type prev allowed.
func narrowed(prev, next *schema.Relation) bool {
	for _, a := range prev.Allowed {
		if !slices.Contains(next.Allowed, a) {
			return true
		}
	}
	return false
}

// validateQuery checks the names a query uses against the schema, so the
// error names the request field: the resource type, the permission (or
// relation) on it, and the subject's type and relation.
// resTypeField names the resource type's field ("" for "resource.type").
func validateQuery(sch *schema.Schema, resType, perm string, sub *graph.SubjectRef, prefix, resTypeField string) error {
	if resTypeField == "" {
		resTypeField = "resource.type"
	}
	def := sch.Definition(resType)
	if def == nil {
		return invalidField(prefix+resTypeField, "type %q is not defined in the schema", resType)
	}
	if !def.Has(perm) {
		return invalidField(prefix+"permission", "definition %q has no permission or relation %q", resType, perm)
	}
	if sub == nil {
		return nil
	}
	sdef := sch.Definition(sub.Object.Type)
	if sdef == nil {
		return invalidField(prefix+"subject.object.type", "type %q is not defined in the schema", sub.Object.Type)
	}
	if sub.Relation != "" && !sdef.Has(sub.Relation) {
		return invalidField(prefix+"subject.relation", "definition %q has no relation or permission %q", sdef.Name, sub.Relation)
	}
	return nil
}
