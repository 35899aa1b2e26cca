package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// pathParts are the relationships and objects of a path, all chains.
type pathParts struct {
	rels    []graph.Relationship
	keys    map[graph.Key]bool
	objects map[graph.ObjectRef]bool
}

func partsOf(p *check.Path) pathParts {
	pp := pathParts{keys: map[graph.Key]bool{}, objects: map[graph.ObjectRef]bool{}}
	var walk func(*check.Path)
	walk = func(p *check.Path) {
		if p == nil {
			return
		}
		pp.objects[p.Subject.Object] = true
		for _, st := range p.Steps {
			pp.objects[st.Object] = true
			if r := st.Relationship; r != nil && !pp.keys[r.Key()] {
				pp.keys[r.Key()] = true
				pp.rels = append(pp.rels, *r)
				pp.objects[r.Subject.Object] = true
			}
		}
		for _, a := range p.Also {
			walk(a)
		}
	}
	walk(p)
	return pp
}

// attachCauses finds the causes of each row: the changes between the
// ends on its path (the path at To for a gain, at From for a loss), the
// expirations on a lost access's path that passed between the ends, and
// failing those the changes touching the path's objects or, for a gain,
// the relationships on them that expired between the ends (a ban).
func attachCauses(ctx context.Context, src Source, rows []DiffRow, from, to diffEnd) error {
	if len(rows) == 0 {
		return nil
	}
	parts := make([]pathParts, len(rows))
	keys, objects := map[graph.Key]bool{}, map[graph.ObjectRef]bool{}
	for i := range rows {
		parts[i] = partsOf(rows[i].Access.Path)
		for k := range parts[i].keys {
			keys[k] = true
		}
		for o := range parts[i].objects {
			objects[o] = true
		}
	}
	changes, err := changesBetween(ctx, src, from.rev, to.rev, func(r graph.Relationship) bool {
		return keys[r.Key()] || objects[r.Resource] || objects[r.Subject.Object]
	})
	if err != nil {
		return err
	}
	events := newAuditCache(src)
	for i := range rows {
		row, pp := &rows[i], parts[i]
		for _, c := range changes {
			if pp.keys[c.Relationship.Key()] {
				row.Causes = append(row.Causes, c)
			}
		}
		if row.Lost {
			for _, r := range pp.rels {
				changed := slices.ContainsFunc(row.Causes, func(c Change) bool { return c.Relationship.Key() == r.Key() })
				if !changed && r.Expiration != nil && r.Expiration.After(from.at) && !r.Expiration.After(to.at) {
					row.Causes = append(row.Causes, Change{Op: Expired, Relationship: r})
				}
			}
		}
		if len(row.Causes) == 0 {
			for _, c := range changes {
				if pp.objects[c.Relationship.Resource] || pp.objects[c.Relationship.Subject.Object] {
					row.Causes = append(row.Causes, c)
				}
			}
		}
		if len(row.Causes) == 0 && !row.Lost {
			// A gain no write explains: something that excluded it (a
			// ban) expired between the ends.
			expired, err := expiredOn(ctx, src, from, to, pp.objects)
			if err != nil {
				return err
			}
			row.Causes = expired
		}
		if len(row.Causes) > MaxCauses {
			row.Causes = row.Causes[:MaxCauses]
		}
		for j := range row.Causes {
			ev, err := events.lookup(ctx, row.Causes[j], from.rev)
			if err != nil {
				return err
			}
			row.Causes[j].Audit = ev
		}
	}
	return nil
}

// changesBetween reads the relationship changes of the revisions in
// (from, to] from the datastore's history and keeps those keep selects,
// oldest first; it reads at most MaxDiffChanges changes.
func changesBetween(ctx context.Context, src Source, from, to storage.Revision, keep func(graph.Relationship) bool) ([]Change, error) {
	if from >= to {
		return nil, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []Change
	read := 0
	for ch, err := range src.Engine.Watch(wctx, from) {
		if err != nil {
			return nil, fmt.Errorf("read the changes after revision %d: %w", from, err)
		}
		if ch.Revision > to {
			break
		}
		for _, rc := range ch.Relationships {
			if read++; read > MaxDiffChanges {
				return nil, fmt.Errorf("%w: more than %d relationship changes between revisions %d and %d, the limit of a diff: compare closer revisions",
					ErrTooLarge, MaxDiffChanges, from, to)
			}
			if !keep(rc.Relationship) {
				continue
			}
			op := Written
			if rc.Op == storage.OpDelete {
				op = Deleted
			}
			out = append(out, Change{Op: op, Relationship: rc.Relationship, Revision: ch.Revision})
		}
		if ch.Revision == to {
			break
		}
	}
	return out, nil
}

// maxExpiredReads bounds the relationships expiredOn reads per object.
const maxExpiredReads = 1000

// expiredOn lists the relationships on the given objects, live at the
// earlier end, whose expiration passed between the ends: at most
// MaxCauses, reading at most maxExpiredReads relationships per object.
func expiredOn(ctx context.Context, src Source, from, to diffEnd, objects map[graph.ObjectRef]bool) ([]Change, error) {
	snap, err := src.Snapshot(ctx, from.rev)
	if errors.Is(err, core.ErrNoSchema) {
		return nil, nil
	}
	if err != nil {
		return nil, core.Invalid(core.Field(from.field), err)
	}
	refs := make([]graph.ObjectRef, 0, len(objects))
	for o := range objects {
		refs = append(refs, o)
	}
	slices.SortFunc(refs, func(a, b graph.ObjectRef) int { return strings.Compare(a.String(), b.String()) })
	var out []Change
	for _, o := range refs {
		if o.ID == graph.Wildcard {
			continue
		}
		f := storage.Filter{ResourceType: o.Type, ResourceIDs: []string{o.ID}}
		for r, err := range snap.Reader.QueryRelationships(ctx, f, storage.QueryOptions{Now: from.at, Limit: maxExpiredReads}) {
			if err != nil {
				return nil, fmt.Errorf("read %s at revision %d: %w", o, from.rev, err)
			}
			if e := r.Expiration; e != nil && e.After(from.at) && !e.After(to.at) {
				out = append(out, Change{Op: Expired, Relationship: r})
				if len(out) == MaxCauses {
					return out, nil
				}
			}
		}
	}
	return out, nil
}
