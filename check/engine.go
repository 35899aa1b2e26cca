package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/errgroup"

	"github.com/pembadb/pemba/expand"

	"github.com/pembadb/pemba/check/dispatch"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage/readcache"
)

// Engine answers permission questions. It is safe for concurrent use; one
// Engine serves one datastore (its cache is keyed by revision).
type Engine struct {
	cfg   Config
	top   dispatch.Resolver[*evaluation] // cache → singleflight → local
	cache *dispatch.Cache[*evaluation]
	sf    *dispatch.Singleflight[*evaluation]
	reads *readcache.Cache // nil when disabled
	// spare holds released evaluations whose maps are reused (see release).
	spare sync.Pool
	// large holds objects a prefetch found to have at least prefetchRows
	// relationships; prefetches skip them. It is a hint, not keyed by
	// revision: an object left out is read by targeted queries, which give
	// the same answers.
	large *lru.Cache[graph.ObjectRef, struct{}]
	// oversize remembers the object#relations whose Expand trees alone
	// are over MaxExpandNodes (see expand.Oversize).
	oversize *expand.Oversize
	// holdable memoizes what each kind of subject can hold.
	holdable holdableCache
	// sets keeps the subject sets lookups computed whole (see setCache).
	sets setCache
	// subjectIDs numbers the subjects of set evaluations and of the sets
	// cached (see subjectIDs, subjectIDTable).
	subjectIDs atomic.Pointer[subjectIDs]
	// ancestries memoizes which permissions the reachability index's
	// parent relations answer (see fromAncestors).
	ancestries ancestryCache
	// bounds are what one who-can-access step holds (see accessBounds).
	bounds accessBounds
	// narrow is when narrowed set evaluations read by subject and prune
	// upward (see narrowTuning).
	narrow narrowTuning
	// wholeMu guards wholeRunning, the type#relations being computed
	// whole in the background: at most setWholeWorkers, one computation
	// per relation (see startWhole).
	wholeMu      sync.Mutex
	wholeRunning map[[2]string]bool

	seq        atomic.Uint64 // evaluation sequence, see dispatch.Problem.Seq
	dispatches atomic.Uint64
	queries    atomic.Uint64
}

// New returns an engine configured by cfg.
func New(cfg Config) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), bounds: defaultAccessBounds, narrow: defaultNarrowing}
	e.large, _ = lru.New[graph.ObjectRef, struct{}](largeObjects) // only fails for a non-positive size
	e.oversize = expand.NewOversize(0)
	e.sets.changes = e.cfg.Changes
	e.sets.maxBytes = e.cfg.SetCacheBytes
	var top dispatch.Resolver[*evaluation] = local{}
	if e.cfg.Cluster != nil {
		top = dispatch.NewRemote(top, e.cfg.Cluster)
	}
	if !e.cfg.DisableSingleflight {
		e.sf = dispatch.NewSingleflight(top)
		top = e.sf
	}
	if e.cfg.CacheEntries > 0 {
		c, err := dispatch.NewCache(top, e.cfg.CacheEntries)
		if err == nil { // only fails for a non-positive size
			e.cache = c
			top = c
		}
	}
	e.top = top
	if e.cfg.ReadCacheBytes >= 0 {
		e.reads = readcache.New(readcache.Config{MaxBytes: e.cfg.ReadCacheBytes, Changes: e.cfg.Changes})
	}
	return e
}

// largeObjects bounds the engine's memory of large objects.
const largeObjects = 65536

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{Dispatches: e.dispatches.Load(), Queries: e.queries.Load()}
	if e.cache != nil {
		s.CacheHits, s.CacheMisses, s.CacheLen = e.cache.Hits(), e.cache.Misses(), e.cache.Len()
	}
	if e.sf != nil {
		s.Shared = e.sf.Shared()
	}
	if e.reads != nil {
		rs := e.reads.Stats()
		s.ReadCacheHits, s.ReadCacheMisses = rs.Hits, rs.Misses
	}
	e.sets.stats(&s)
	return s
}

// newEvaluation prepares an evaluation for one subject of one request.
func (e *Engine) newEvaluation(ctx context.Context, snap Snapshot, subject graph.SubjectRef, caveatCtx map[string]any, now time.Time) (*evaluation, error) {
	h, err := contextHash(caveatCtx)
	if err != nil {
		return nil, err
	}
	ev, _ := e.spare.Get().(*evaluation)
	if ev == nil {
		ev = &evaluation{}
	}
	*ev = evaluation{
		eng: e, ctx: ctx, schema: snap.Schema, reader: e.reads.Reader(snap.Reader), raw: snap.Reader, rev: snap.Reader.Revision(),
		now: now, nowNano: now.UnixNano(), caveatCtx: caveatCtx, ctxHash: h,
		seq: e.nextSeq(), subject: subject, limit: e.cfg.MaxDepth,
		memo: ev.memo, progress: ev.progress, rows: ev.rows, frames: ev.frames[:0], consulted: ev.consulted[:0],
		outs: ev.outs,
	}
	return ev, nil
}

// nextSeq numbers a new evaluation: the larger of the last number plus
// one and the clock in nanoseconds. Any increasing numbering keeps
// Singleflight free of deadlocks; following the clock keeps the numbers
// of different nodes comparable, so an owner shares an evaluation between
// its own requests and those peers dispatch to it in both directions.
func (e *Engine) nextSeq() uint64 {
	for {
		last := e.seq.Load()
		next := max(last+1, uint64(time.Now().UnixNano()))
		if e.seq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// spareMapEntries bounds the maps a released evaluation keeps for reuse.
const spareMapEntries = 1024

// release returns an evaluation no one refers to any more, so the next
// one reuses its maps instead of growing new ones: a check's memo and
// progress maps are most of what it allocates.
func (e *Engine) release(ev *evaluation) {
	memo, progress, rows, frames, consulted := ev.memo, ev.progress, ev.rows, ev.frames, ev.consulted
	outs := ev.outs
	clear(outs) // drop what its outcomes point to
	*ev = evaluation{outs: outs[:0]}
	if len(memo) > spareMapEntries || len(rows) > spareMapEntries {
		e.spare.Put(ev) // keep the struct, drop the large maps
		return
	}
	clear(memo)
	clear(progress)
	clear(rows)
	ev.memo, ev.progress, ev.rows, ev.frames, ev.consulted = memo, progress, rows, frames[:0], consulted[:0]
	e.spare.Put(ev)
}

// contextHash identifies a caveat context for cache keys: FNV-1a of its
// canonical JSON (map keys sorted).
func contextHash(c map[string]any) (uint64, error) {
	if len(c) == 0 {
		return 0, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("%w: caveat context: %v", ErrInvalidRequest, err)
	}
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64() | 1, nil
}

func requestNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// validate checks that the request names things the schema defines.
func validate(s *schema.Schema, res graph.ObjectRef, perm string, sub graph.SubjectRef) error {
	if s == nil {
		return fmt.Errorf("%w: no schema", ErrInvalidRequest)
	}
	def := s.Definitions[res.Type]
	if def == nil {
		return &RequestError{Part: "resource.type", Message: fmt.Sprintf("type %q is not defined in the schema", res.Type)}
	}
	if res.ID == "" {
		return &RequestError{Part: "resource.id", Message: "empty"}
	}
	if def.Relations[perm] == nil && def.Permissions[perm] == nil {
		return &RequestError{Part: "permission", Message: fmt.Sprintf("definition %q has no permission or relation %q", res.Type, perm)}
	}
	return validateSubject(s, sub)
}

func validateSubject(s *schema.Schema, sub graph.SubjectRef) error {
	sdef := s.Definitions[sub.Object.Type]
	if sdef == nil {
		return &RequestError{Part: "subject.type", Message: fmt.Sprintf("type %q is not defined in the schema", sub.Object.Type)}
	}
	if sub.Object.ID == "" {
		return &RequestError{Part: "subject.id", Message: "empty"}
	}
	if sub.Relation != "" && sdef.Relations[sub.Relation] == nil && sdef.Permissions[sub.Relation] == nil {
		return &RequestError{Part: "subject.relation", Message: fmt.Sprintf("definition %q has no relation or permission %q", sub.Object.Type, sub.Relation)}
	}
	return nil
}

// Check answers whether req.Subject has req.Permission on req.Resource at
// snap, with the access path when req.Explain is set.
func (e *Engine) Check(ctx context.Context, snap Snapshot, req Request) (Result, error) {
	if err := validate(snap.Schema, req.Resource, req.Permission, req.Subject); err != nil {
		return Result{}, err
	}
	ev, err := e.newEvaluation(ctx, snap, req.Subject, req.Context, requestNow(req.Now))
	if err != nil {
		return Result{}, err
	}
	defer e.release(ev)
	return ev.check(req.Resource, req.Permission, req.Explain)
}

// check answers one question in ev, which may already hold memoized
// answers for its subject.
func (ev *evaluation) check(res graph.ObjectRef, perm string, explain bool) (Result, error) {
	if !explain {
		ev.explain, ev.limit = false, ev.eng.cfg.MaxDepth
		out, err := ev.checkBatch(res.Type, perm, []string{res.ID}, 1)
		if err != nil {
			return Result{}, fmt.Errorf("check %s#%s@%s: %w", res.String(), perm, ev.subject.String(), err)
		}
		// Missing may be shared with the cache: hand out a copy.
		return Result{Permissionship: out[0].perm, Missing: slices.Clone(out[0].missing)}, nil
	}
	// Iterative deepening: the first depth limit at which a grant is found
	// yields a shortest path. A pass that cut no branch is final.
	saved := ev.memo
	defer func() { ev.reset(); ev.memo = saved; ev.explain = false }()
	var best outcome
	ev.reset()
	for limit := 1; limit <= ev.eng.cfg.MaxDepth; limit++ {
		ev.deepen()
		ev.explain, ev.limit = true, limit
		out, err := ev.checkBatch(res.Type, perm, []string{res.ID}, 1)
		if err != nil {
			return Result{}, fmt.Errorf("check %s#%s@%s: %w", res.String(), perm, ev.subject.String(), err)
		}
		best = out[0]
		if best.perm == HasPermission || !ev.cutoff {
			break
		}
	}
	r := Result{Permissionship: best.perm, Missing: best.missing}
	if best.perm != NoPermission {
		r.Path = toPath(best.path, ev.subject, best.missing)
		return r, nil
	}
	d, err := ev.denial(res, perm)
	if err != nil {
		return Result{}, err
	}
	r.Denial = d
	return r, nil
}

// BulkCheck answers every request at snap, in order. Requests about the
// same subject and caveat context share one evaluation, so their common
// sub-problems are computed once; different subjects run concurrently (at
// most Config.Concurrency at a time). An item's error is reported in its
// BulkResult; the returned error is only for the request as a whole.
func (e *Engine) BulkCheck(ctx context.Context, snap Snapshot, reqs []Request) ([]BulkResult, error) {
	out := make([]BulkResult, len(reqs))
	type groupKey struct {
		subject graph.SubjectRef
		ctx     uint64
		now     time.Time
	}
	now := time.Now()
	groups := make(map[groupKey][]int)
	var order []groupKey
	for i, r := range reqs {
		if err := validate(snap.Schema, r.Resource, r.Permission, r.Subject); err != nil {
			out[i].Err = err
			continue
		}
		h, err := contextHash(r.Context)
		if err != nil {
			out[i].Err = err
			continue
		}
		k := groupKey{r.Subject, h, r.Now}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Concurrency)
	for _, k := range order {
		idx := groups[k]
		g.Go(func() error {
			first := reqs[idx[0]]
			n := first.Now
			if n.IsZero() {
				n = now
			}
			ev, err := e.newEvaluation(gctx, snap, first.Subject, first.Context, n)
			if err != nil {
				return err
			}
			for _, i := range idx {
				out[i].Result, out[i].Err = ev.check(reqs[i].Resource, reqs[i].Permission, reqs[i].Explain)
			}
			e.release(ev)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("bulk check: %w", err)
	}
	return out, nil
}

// ExpandRequest asks for the userset tree of Permission on Resource.
type ExpandRequest struct {
	Resource   graph.ObjectRef
	Permission string
	Now        time.Time
	// Shallow leaves subject sets unexpanded (see expand.Options.Shallow).
	Shallow bool
}

// Expand returns the userset tree of req.Permission on req.Resource,
// bounded by Config.MaxDepth and Config.MaxExpandNodes (a larger tree
// fails with expand.ErrTooLarge).
func (e *Engine) Expand(ctx context.Context, snap Snapshot, req ExpandRequest) (*expand.Node, error) {
	if snap.Schema == nil {
		return nil, fmt.Errorf("%w: no schema", ErrInvalidRequest)
	}
	n, err := expand.Expand(ctx, snap.Schema, e.reads.Reader(snap.Reader), req.Resource, req.Permission,
		expand.Options{MaxDepth: e.cfg.MaxDepth, MaxNodes: e.cfg.MaxExpandNodes, Now: requestNow(req.Now), Shallow: req.Shallow,
			Oversize: e.oversize, Changes: e.cfg.Changes})
	switch {
	case errors.Is(err, expand.ErrMaxDepth):
		return nil, fmt.Errorf("%w: %v", ErrMaxDepth, err)
	case errors.Is(err, expand.ErrUnknown):
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return n, err
}
