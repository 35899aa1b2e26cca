package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// ErrSchemaOrphans marks a schema write refused because stored
// relationships would no longer fit the new schema.
var ErrSchemaOrphans = errors.New("schema change would orphan stored relationships")

// orphanLimit caps how many orphaned relationships one orphan count reads.
const orphanLimit = 10000

// Orphan is a class of stored relationships a new schema would not accept.
type Orphan struct {
	what  string // e.g. `relation document#viewer` or `subject type user on document#viewer`
	count int    // relationships found, capped at orphanLimit
	note  string // appended, e.g. " storing a value for it"
}

func (o Orphan) String() string {
	n := fmt.Sprint(o.count)
	if o.count >= orphanLimit {
		n = fmt.Sprintf("at least %d", orphanLimit)
	}
	return fmt.Sprintf("%s still has %s relationship(s)%s", o.what, n, o.note)
}

// Orphans lists the stored relationships (read through reader) that
// next would no longer accept: those of relations it removes (or turns
// into permissions), and those whose subject type it drops from a relation
// it keeps. Each class is one indexed query, capped at orphanLimit.
func Orphans(ctx context.Context, reader storage.Reader, prev, next *schema.Schema) ([]Orphan, error) {
	d := schema.Compare(prev, next)
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
	var out []Orphan
	for _, node := range d.RemovedRelations() {
		n, err := count(storage.Filter{ResourceType: node.Type, Relation: node.Relation}, nil)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, Orphan{what: fmt.Sprintf("relation %s#%s", node.Type, node.Relation), count: n})
		}
	}
	for _, ra := range d.RemovedAllowedSubjects() {
		a, node := ra.Subject, ra.Relation
		sf := &storage.SubjectFilter{Type: a.Type}
		if a.Wildcard {
			sf.IDs = []string{graph.Wildcard}
		} else {
			rel := a.Relation
			sf.Relation = &rel
		}
		nrel := next.Definition(node.Type).Relations[node.Relation]
		n, err := count(storage.Filter{ResourceType: node.Type, Relation: node.Relation, Subject: sf}, func(r graph.Relationship) bool {
			return r.Subject.IsWildcard() == a.Wildcard && !accepts(nrel, r)
		})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, Orphan{what: fmt.Sprintf("relation %s#%s with subject type %s", node.Type, node.Relation, a), count: n})
		}
	}
	more, err := caveatParamOrphans(ctx, reader, prev, next)
	return append(out, more...), err
}

// caveatParamOrphans counts, for every caveat parameter next removes or
// gives another type, the stored relationships whose caveat context holds
// a value for it: the value was checked against the old type and would
// no longer convert.
func caveatParamOrphans(ctx context.Context, reader storage.Reader, prev, next *schema.Schema) ([]Orphan, error) {
	var out []Orphan
	for _, name := range prev.CaveatOrder {
		nc := next.Caveat(name)
		if nc == nil {
			continue // a removed caveat is no longer allowed anywhere: RemovedAllowedSubjects covers it
		}
		for _, p := range prev.Caveat(name).Params {
			change := "removed"
			if i := slices.IndexFunc(nc.Params, func(q schema.CaveatParam) bool { return q.Name == p.Name }); i >= 0 {
				if nc.Params[i].Type == p.Type {
					continue
				}
				change = "type " + p.Type + " → " + nc.Params[i].Type
			}
			n, err := countStoringParam(ctx, reader, prev, name, p.Name)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				out = append(out, Orphan{what: fmt.Sprintf("caveat %s parameter %s (%s)", name, p.Name, change),
					count: n, note: " storing a value for it"})
			}
		}
	}
	return out, nil
}

// countStoringParam counts (up to orphanLimit) the relationships, on the
// relations sch lets carry caveat, whose context has a value for param.
func countStoringParam(ctx context.Context, reader storage.Reader, sch *schema.Schema, caveat, param string) (int, error) {
	n := 0
	for _, defName := range sch.DefinitionOrder {
		def := sch.Definition(defName)
		for _, relName := range slices.Sorted(maps.Keys(def.Relations)) {
			queried := map[string]bool{} // subject types already counted on this relation
			for _, a := range def.Relations[relName].Allowed {
				if a.Caveat != caveat || queried[a.Type] {
					continue
				}
				queried[a.Type] = true
				f := storage.Filter{ResourceType: defName, Relation: relName, Subject: &storage.SubjectFilter{Type: a.Type}}
				for r, err := range reader.QueryRelationships(ctx, f, storage.QueryOptions{}) {
					if err != nil {
						return 0, err
					}
					if r.Caveat == nil || r.Caveat.Name != caveat {
						continue
					}
					if _, ok := r.Caveat.Context[param]; ok {
						if n++; n >= orphanLimit {
							return n, nil
						}
					}
				}
			}
		}
	}
	return n, nil
}

// accepts reports whether rel accepts the stored relationship r.
func accepts(rel *schema.Relation, r graph.Relationship) bool {
	caveat := ""
	if r.Caveat != nil {
		caveat = r.Caveat.Name
	}
	for _, a := range rel.AllowedFor(r.Subject.Object.Type, r.Subject.Relation, r.Subject.IsWildcard()) {
		if a.Caveat == caveat && a.Expiration == (r.Expiration != nil) {
			return true
		}
	}
	return false
}

// OrphansError returns the refusal of a schema write that would orphan
// the given classes of stored relationships.
func OrphansError(orphans []Orphan) error {
	parts := make([]string, len(orphans))
	for i, o := range orphans {
		parts[i] = o.String()
	}
	return &orphansError{msg: fmt.Sprintf("%v: %s; delete those relationships first (pemba relationship bulk-delete)",
		ErrSchemaOrphans, strings.Join(parts, "; "))}
}

// orphansError refuses a schema write that would orphan stored
// relationships; it matches ErrSchemaOrphans.
type orphansError struct{ msg string }

func (e *orphansError) Error() string        { return e.msg }
func (e *orphansError) Is(target error) bool { return target == ErrSchemaOrphans }
