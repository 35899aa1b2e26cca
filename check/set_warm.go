package check

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Warming the set cache. A lookup that meets a broad set no earlier
// lookup computed whole (everyone cleared for a sensitivity tier) computes
// it narrowed, at ten to twenty times the cost of intersecting with it
// cached, and asks for it to be computed whole in the background; on a
// restarted server every lookup of its first seconds pays that. The sets
// that cost it are few and known from the schema: the permissions arrows
// reach on types with few objects (a tier, an environment), which many
// resources point at. WarmSets computes those before a server reports
// ready.

const (
	// warmMaxObjects is the most objects a type may have for the
	// permissions arrows reach on it to be warmed.
	warmMaxObjects = 16
	// warmScanRows bounds the relationships read to find a type's
	// objects: a type whose first warmMaxObjects objects have more is
	// warmed for those it found.
	warmScanRows = 1 << 16
)

// WarmSets computes whole, and caches, the subject sets lookups on many
// resources share and are slowest to compute when first asked for: for
// each permission an arrow reaches (tier->clearance) on a type with at
// most warmMaxObjects objects, that permission's set on each object, for
// every subject type that can hold it. It returns how many sets it
// cached. ctx bounds it: the sets computed before it ends stay cached.
// Without a set cache (Config.CacheEntries < 0) it does nothing; a set
// too large for the cache, or for set evaluation, is skipped, and
// lookups compute it as they would have.
func (e *Engine) WarmSets(ctx context.Context, snap Snapshot) (int, error) {
	if e.cfg.CacheEntries <= 0 || snap.Schema == nil {
		return 0, nil
	}
	warmed := 0
	for _, target := range arrowTargets(snap.Schema) {
		ids, err := fewObjects(ctx, snap.Reader, target.Type)
		if err != nil {
			return warmed, fmt.Errorf("warm sets: objects of %s: %w", target.Type, err)
		}
		if len(ids) == 0 {
			continue
		}
		for _, subjectType := range snap.Schema.DefinitionOrder {
			n, err := e.warmSets(ctx, snap, subjectType, target, ids)
			warmed += n
			if err != nil {
				return warmed, fmt.Errorf("warm sets: %s#%s for %s: %w", target.Type, target.Relation, subjectType, err)
			}
		}
	}
	return warmed, nil
}

// arrowTargets returns the permissions some arrow of s reaches, as
// type#permission, sorted.
func arrowTargets(s *schema.Schema) []schema.Node {
	seen := map[schema.Node]bool{}
	for _, defName := range s.DefinitionOrder {
		def := s.Definitions[defName]
		for _, p := range def.Permissions {
			_ = walkExpr(p.Expr, false, func(x schema.Expr) error {
				a, ok := x.(*schema.Arrow)
				if !ok || def.Relations[a.Tupleset] == nil {
					return nil
				}
				for _, allowed := range def.Relations[a.Tupleset].Allowed {
					if target := s.Definitions[allowed.Type]; target != nil && target.Permissions[a.Target] != nil {
						seen[schema.Node{Type: allowed.Type, Relation: a.Target}] = true
					}
				}
				return nil
			})
		}
	}
	out := make([]schema.Node, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b schema.Node) int {
		return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Relation, b.Relation))
	})
	return out
}

// fewObjects returns the objects of typ that relationships name as
// resources, in ID order, or none when typ has more than warmMaxObjects.
// It reads at most warmScanRows relationships.
func fewObjects(ctx context.Context, r storage.Reader, typ string) ([]string, error) {
	var ids []string
	for rel, err := range r.QueryRelationships(ctx, storage.Filter{ResourceType: typ}, storage.QueryOptions{Limit: warmScanRows}) {
		if err != nil {
			return nil, err
		}
		if id := rel.Resource.ID; len(ids) == 0 || ids[len(ids)-1] != id {
			if len(ids) == warmMaxObjects {
				return nil, nil
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// warmSets computes target's sets on ids whole for subjects of
// subjectType and caches them, as a background computation of wanted
// sets does (see wholeInBackground), and returns how many it cached.
func (e *Engine) warmSets(ctx context.Context, snap Snapshot, subjectType string, target schema.Node, ids []string) (int, error) {
	ev, err := e.newEvaluation(ctx, snap, graph.SubjectRef{}, nil, requestNow(time.Time{}))
	if err != nil {
		return 0, err
	}
	defer e.release(ev)
	se := newSetEval(ev, subjectType)
	if !se.holds[target] {
		return 0, nil
	}
	se.cache, se.background, se.maxEntries = &e.sets, true, wholeMaxEntries(e.sets.maxBytes)
	res, err := se.batch(target.Type, target.Relation, ids, 1)
	switch {
	case errors.Is(err, errSetFallback), errors.Is(err, errSetsTooLarge):
		return 0, nil // lookups compute it, narrowed, as they would have
	case err != nil:
		return 0, err
	}
	deps := e.sets.dependencies(ev.schema, target.Type, target.Relation)
	warmed := 0
	for j, id := range ids {
		if e.sets.put(se.cacheKey(target.Type, id, target.Relation, res[j].caveated), res[j], ev.nowNano, ev.rev, se.ids, deps, putWanted) {
			warmed++
		}
	}
	e.sets.warmed.Add(uint64(warmed))
	return warmed, nil
}
