package check

import (
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// An arrow whose target is a relation that names its subjects directly
// (`member->delegate`, where user#delegate lists agents) can only grant
// through the tupleset's objects that list the check's subject: one
// reverse read finds them (an agent's principal), where checking the
// target on every object the tupleset names (each of a team's fifty
// members) reads each one's rows. dropNonHolders applies this to an
// arrow's edges once they are many.

// holdersFrom is the number of an arrow's edges to one type from which
// they are narrowed to the direct holders: below it, checking the targets
// (often prefetched already) costs less than the reverse read.
const holdersFrom = 16

// holderSet is the objects whose relation names the subject directly;
// ok is false when the relation does not qualify or they are too many.
type holderSet struct {
	ids map[string]bool
	ok  bool
}

// dropNonHolders removes, from an arrow's edges to objects of one type,
// those whose object cannot hold target for the check's plain subject
// because target is a relation of that type that names subjects only
// directly and does not name this one (see directHolders). Only `->` and
// `.any` arrows may drop edges: a `.all` arrow needs every related
// object's answer.
func (ev *evaluation) dropNonHolders(edges []edge, a *schema.Arrow) ([]edge, error) {
	if a.Func != schema.ArrowAny || len(edges) < holdersFrom {
		return edges, nil
	}
	perType := map[string]int{}
	for _, ed := range edges {
		perType[ed.rel.Subject.Object.Type]++
	}
	for typ, n := range perType {
		if n < holdersFrom {
			continue
		}
		h, err := ev.directHolders(typ, a.Target)
		if err != nil {
			return nil, err
		}
		if !h.ok {
			continue
		}
		kept := edges[:0]
		for _, ed := range edges {
			if o := ed.rel.Subject.Object; o.Type != typ || h.ids[o.ID] {
				kept = append(kept, ed)
			}
		}
		edges = kept
	}
	return edges, nil
}

// directHolders returns the objects of typ whose relation rel names the
// check's plain subject in a relationship of its own. They are the only
// objects of typ holding rel for the subject when rel is a relation
// whose allowed subjects are all plain objects with no wildcard of the
// subject's type: a subject set could hold the subject through its
// members, a wildcard names every subject. Caveated and expiring
// relationships are among them (the target's check decides them); an
// expired one is not read. ok is false for any other rel, past
// arrowMemberMax holders, and in an explain pass, whose answer says why
// each related object did not grant.
func (ev *evaluation) directHolders(typ, rel string) (holderSet, error) {
	sub := ev.subject
	if ev.explain || sub.Object.Type == "" || sub.Relation != "" {
		return holderSet{}, nil
	}
	def := ev.schema.Definitions[typ]
	if def == nil || def.Relations[rel] == nil {
		return holderSet{}, nil
	}
	for _, al := range def.Relations[rel].Allowed {
		if al.Relation != "" || (al.Wildcard && al.Type == sub.Object.Type) {
			return holderSet{}, nil
		}
	}
	k := node{typ: typ, rel: rel}
	if h, done := ev.holders[k]; done {
		return h, nil
	}
	ellipsis := ""
	f := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: sub.Object.Type, IDs: []string{sub.Object.ID}, Relation: &ellipsis},
		ResourceType: typ, Relation: rel}
	h := holderSet{ids: map[string]bool{}, ok: true}
	if err := ev.reverseUpTo(f, arrowMemberMax+1, func(r graph.Relationship) { h.ids[r.Resource.ID] = true }); err != nil {
		return holderSet{}, err
	}
	if len(h.ids) > arrowMemberMax {
		h = holderSet{}
	}
	if ev.holders == nil {
		ev.holders = make(map[node]holderSet)
	}
	ev.holders[k] = h
	return h, nil
}
