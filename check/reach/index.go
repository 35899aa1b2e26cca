package reach

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// ErrTooLarge is Build's and Apply's answer when the index would hold
// more than Options.MaxBytes: the index then holds nothing, and every
// question is left to the walk.
var ErrTooLarge = errors.New("reach index: over its memory limit")

// ErrSchemaChanged is Apply's answer to a change that writes a schema:
// the index applies nothing and must be rebuilt (Build) for the new one.
var ErrSchemaChanged = errors.New("reach index: schema changed, rebuild needed")

// Index is the reachability index of every qualifying relation of one
// schema. It is safe for concurrent use: one goroutine at a time changes
// it (Build, Apply), any number ask it (Holders).
type Index struct {
	// mu guards st and everything it points to. Flattened memberships
	// are replaced, never changed in place, so a slice read under mu
	// stays valid after it is released.
	mu sync.RWMutex
	st *state

	opts Options

	hits, declines atomic.Uint64
	builds         atomic.Uint64
	buildNanos     atomic.Int64 // duration of the last build

	// ancestorHits and ancestorDeclines count Ancestors' answers.
	ancestorHits, ancestorDeclines atomic.Uint64
}

// Options configure an Index.
type Options struct {
	// MaxBytes bounds the index's estimated memory (Stats.Bytes); 0 means
	// no bound. A build or change that would pass it empties the index
	// (ErrTooLarge).
	MaxBytes int64
}

// state is the index's content for one schema.
type state struct {
	schema *schema.Schema
	// built is the revision of the snapshot the state was read at;
	// applied is the newest revision whose changes are all applied.
	built, applied storage.Revision
	// floor is the latest commit time (unix nanoseconds) of the changes
	// applied. Deleting a relationship that has already expired removes
	// it without a change, so the index may still hold it; it expired
	// before that delete committed, so from floor on it is expired for
	// every question, as in the datastore. Questions judged earlier are
	// declined.
	floor int64
	sets  map[Key]*set
	trees map[Key]*tree // parent relations (see Ancestors)
	// inverse holds the relations a permission steps through to itself,
	// inverted (see StepKeys and Referrers).
	inverse map[Key]*tree
}

// New returns an empty index, which answers nothing until built.
func New(opts Options) *Index { return &Index{opts: opts} }

// over reports whether size bytes pass the memory limit.
func (ix *Index) over(size int) bool { return ix.opts.MaxBytes > 0 && int64(size) > ix.opts.MaxBytes }

// tooLarge empties the index and returns ErrTooLarge with the sizes.
func (ix *Index) tooLarge(size int) error {
	ix.mu.Lock()
	ix.st = nil
	ix.mu.Unlock()
	return fmt.Errorf("%w: ~%d bytes, limit %d", ErrTooLarge, size, ix.opts.MaxBytes)
}

// buildOptions reads relationships whatever their expiration: the index
// keeps each expiration and judges it per question, against the
// question's own instant.
var buildOptions = storage.QueryOptions{Now: time.Unix(0, 1)}

// readAll reads every relationship of k at r into add; every 4096 it
// stops if ctx is done or if size (the index's estimate with what was
// added) is past the memory bound.
func (ix *Index) readAll(ctx context.Context, r storage.Reader, k Key, size func() int, add func(graph.Relationship)) error {
	f := storage.Filter{ResourceType: k.Type, Relation: k.Relation}
	n := 0
	for rel, err := range r.QueryRelationships(ctx, f, buildOptions) {
		if err != nil {
			return fmt.Errorf("build reach index of %s#%s: %w", k.Type, k.Relation, err)
		}
		if n++; n%4096 == 0 {
			if ctx.Err() != nil {
				return fmt.Errorf("build reach index of %s#%s: %w", k.Type, k.Relation, ctx.Err())
			}
			if ix.over(size()) {
				return ix.tooLarge(size())
			}
		}
		add(rel)
	}
	return nil
}

// Build replaces the index's content with a full read at r's revision,
// for s (the schema in force there; nil when none is). Until it returns
// the previous content keeps answering for the revisions it holds.
func (ix *Index) Build(ctx context.Context, s *schema.Schema, r storage.Reader) error {
	start := time.Now()
	st := &state{schema: s, built: r.Revision(), applied: r.Revision(), sets: make(map[Key]*set), trees: make(map[Key]*tree),
		inverse: make(map[Key]*tree)}
	size := 0
	// A parent relation kept both ways (see StepKeys) is read once for
	// both of its trees.
	parents, steps := ParentKeys(s), StepKeys(s)
	for _, k := range append(slices.Clone(parents), steps...) {
		var trees []*tree
		if slices.Contains(parents, k) && st.trees[k] == nil {
			st.trees[k] = newTree(k)
			trees = append(trees, st.trees[k])
		}
		if slices.Contains(steps, k) && st.inverse[k] == nil {
			st.inverse[k] = newTree(k)
			st.inverse[k].inverse = true
			trees = append(trees, st.inverse[k])
		}
		if len(trees) == 0 {
			continue
		}
		held := func() int {
			n := size
			for _, t := range trees {
				n += t.bytes()
			}
			return n
		}
		if err := ix.readAll(ctx, r, k, held, func(rel graph.Relationship) {
			for _, t := range trees {
				t.change(rel, false)
			}
		}); err != nil {
			return err
		}
		for _, t := range trees {
			t.since = st.built
		}
		if size = held(); ix.over(size) {
			return ix.tooLarge(size)
		}
	}
	for _, k := range Keys(s) {
		set := newSet(k, wildcards(s, k))
		set.since = st.built
		var d dirty
		if err := ix.readAll(ctx, r, k, func() int { return size + set.bytes() }, func(rel graph.Relationship) { set.change(rel, false, &d) }); err != nil {
			return err
		}
		all := dirty{roots: make([]uint32, set.objects.len()), subjects: make(map[uint32]struct{}, set.subjects.len())}
		for i := range all.roots {
			all.roots[i] = uint32(i)
		}
		for i := range set.subjects.len() {
			all.subjects[uint32(i)] = struct{}{}
		}
		set.refresh(&all)
		st.sets[k] = set
		if size += set.bytes(); ix.over(size) {
			return ix.tooLarge(size)
		}
	}
	ix.mu.Lock()
	ix.st = st
	ix.mu.Unlock()
	ix.builds.Add(1)
	ix.buildNanos.Store(int64(time.Since(start)))
	return nil
}

// wildcards returns the subject types whose wildcard relation k allows.
func wildcards(s *schema.Schema, k Key) map[string]bool {
	out := map[string]bool{}
	for _, a := range s.Definitions[k.Type].Relations[k.Relation].Allowed {
		if a.Wildcard {
			out[a.Type] = true
		}
	}
	return out
}

// Revision returns the newest revision the index has applied every change
// up to, and false before the first build.
func (ix *Index) Revision() (storage.Revision, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.st == nil {
		return 0, false
	}
	return ix.st.applied, true
}

// Apply applies one committed change, which must follow the revision the
// index holds (as Watch yields them; older ones are skipped). A change
// that writes a schema is refused with ErrSchemaChanged: the index keeps
// answering for the revisions before it and must be rebuilt.
func (ix *Index) Apply(ch storage.Change) error {
	ix.mu.Lock()
	st := ix.st
	if st == nil {
		ix.mu.Unlock()
		return errors.New("reach index: apply before build")
	}
	if ch.Revision <= st.applied {
		ix.mu.Unlock()
		return nil
	}
	if ch.SchemaChanged {
		ix.mu.Unlock()
		return ErrSchemaChanged
	}
	touched := map[*set]*dirty{}
	for _, c := range ch.Relationships {
		r := c.Relationship
		// A parent relation's edges are read under the lock: they change
		// here, with since, so the revisions before this change are
		// declined from now on.
		for _, t := range [2]*tree{st.trees[Key{r.Resource.Type, r.Relation}], st.inverse[Key{r.Resource.Type, r.Relation}]} {
			if t != nil {
				t.change(r, c.Op == storage.OpDelete)
				t.since = ch.Revision
			}
		}
		set := st.sets[Key{r.Resource.Type, r.Relation}]
		if set == nil {
			continue
		}
		d := touched[set]
		if d == nil {
			d = &dirty{}
			touched[set] = d
		}
		set.change(r, c.Op == storage.OpDelete, d)
	}
	ix.mu.Unlock()
	// Recompute without the lock, so checks are not held up by a change
	// near the top of a large hierarchy: until the update is published
	// the relation answers for its earlier revisions only.
	updates := make(map[*set]update, len(touched))
	for set, d := range touched {
		updates[set] = set.recompute(d)
	}
	ix.mu.Lock()
	for set, u := range updates {
		set.publish(u)
		set.since = ch.Revision
	}
	st.floor = max(st.floor, ch.CommittedAt.UnixNano())
	st.applied = ch.Revision
	size := 0
	for _, set := range st.sets {
		size += set.bytes()
	}
	for _, t := range st.trees {
		size += t.bytes()
	}
	for _, t := range st.inverse {
		size += t.bytes()
	}
	ix.mu.Unlock()
	if ix.over(size) {
		return ix.tooLarge(size)
	}
	return nil
}

// Holders returns, for plain subject sub, the objects of typ whose
// relation rel holds it through any depth, as they are at revision rev
// and instant now (unix nanoseconds): of(id) gives the length of the
// shortest chain of relationships from id down to the subject (or to a
// wildcard of its type) and until when the subject stays in (Never for
// good). It declines (ok false) unless the answers are exact: the
// relation is indexed, rev lies between its last change and the newest
// revision applied, now is no earlier than the newest change applied was
// committed (see state.floor), no caveated relationship is stored in it,
// and none of
// the subject's shortest chains has expired by now (a longer chain may
// then hold: the walk finds it).
func (ix *Index) Holders(rev storage.Revision, typ, rel string, sub graph.ObjectRef, now int64) (of func(id string) (level int32, until int64, ok bool), ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	st := ix.st
	if st == nil {
		ix.declines.Add(1)
		return nil, false
	}
	set := st.sets[Key{typ, rel}]
	if set == nil || rev < set.since || rev > st.applied || now < st.floor || len(set.caveated) > 0 {
		ix.declines.Add(1)
		return nil, false
	}
	var lists [2]holders
	n := 0
	take := func(o graph.ObjectRef) bool {
		u, ok := set.subjects.lookup(o)
		if !ok {
			return true
		}
		if set.minUntil[u] <= now {
			return false
		}
		lists[n] = set.holders.view(set.up[u])
		n++
		return true
	}
	if !take(sub) {
		ix.declines.Add(1)
		return nil, false
	}
	if sub.ID != graph.Wildcard && set.wildcard[sub.Type] && !take(graph.ObjectRef{Type: sub.Type, ID: graph.Wildcard}) {
		ix.declines.Add(1)
		return nil, false
	}
	ix.hits.Add(1)
	if n == 0 {
		return func(string) (int32, int64, bool) { return 0, 0, false }, true
	}
	return func(id string) (int32, int64, bool) {
		ix.mu.RLock()
		x, known := set.objects.lookup(id)
		ix.mu.RUnlock()
		if !known {
			return 0, 0, false
		}
		var best entry
		found := false
		for _, l := range lists[:n] {
			e, ok := l.find(x)
			if ok && (!found || e.level < best.level || (e.level == best.level && e.until > best.until)) {
				best, found = e, true
			}
		}
		return best.level, best.until, found
	}, true
}

// Stats describes the index.
type Stats struct {
	Relations int              // indexed relations
	Revision  storage.Revision // newest revision applied
	Edges     int              // direct relationships held
	Entries   int              // flattened entries (object or subject → object)
	Bytes     int              // estimated memory
	Hits      uint64           // questions answered
	Declines  uint64           // questions left to the walk
	Builds    uint64           // full builds
	LastBuild time.Duration    // duration of the last build

	// The parent relations (see Ancestors, and StepKeys for those kept
	// inverted): how many are indexed, their relationships, and the
	// lineages answered and declined (Ancestors and Referrers). Bytes
	// counts their memory too.
	ParentRelations  int
	ParentEdges      int
	AncestorHits     uint64
	AncestorDeclines uint64
}

// Stats returns the index's size and counters.
func (ix *Index) Stats() Stats {
	s := Stats{Hits: ix.hits.Load(), Declines: ix.declines.Load(), Builds: ix.builds.Load(),
		LastBuild: time.Duration(ix.buildNanos.Load()), AncestorHits: ix.ancestorHits.Load(), AncestorDeclines: ix.ancestorDeclines.Load()}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.st == nil {
		return s
	}
	s.Revision = ix.st.applied
	for _, set := range ix.st.sets {
		s.Relations++
		s.Edges += set.edges
		s.Entries += set.ancEntries + set.upEntries
		s.Bytes += set.bytes()
	}
	for _, trees := range [2]map[Key]*tree{ix.st.trees, ix.st.inverse} {
		for _, t := range trees {
			s.ParentRelations++
			s.ParentEdges += t.edges
			s.Bytes += t.bytes()
		}
	}
	return s
}

// Ancestors returns the lineage of ids through parent relation rel of
// typ (see Parental) as it is at revision rev and instant now (unix
// nanoseconds): ids and every object above them, with each one's parents
// whose relationships have not expired by now. It declines (ok false)
// unless the answer is exact: the relation is indexed, rev lies between
// its last change and the newest revision applied, now is no earlier
// than the newest change applied was committed (see state.floor), no
// relationship the tree cannot represent is stored in it, the lineage
// holds at most limit objects and it has no cycle.
func (ix *Index) Ancestors(rev storage.Revision, typ, rel string, ids []string, now int64, limit int) (Lineage, bool) {
	return ix.lineage(false, rev, Key{typ, rel}, ids, now, limit)
}

// Referrers is Ancestors the other way, through a relation a permission
// steps through to itself (see StepKeys): ids and every object whose
// relation rel of typ names one of them, through any depth, with each
// one's referrers whose relationships have not expired by now (in
// Lineage.Up). It declines as Ancestors does.
func (ix *Index) Referrers(rev storage.Revision, typ, rel string, ids []string, now int64, limit int) (Lineage, bool) {
	return ix.lineage(true, rev, Key{typ, rel}, ids, now, limit)
}

// lineage answers Ancestors (inverse false) and Referrers.
func (ix *Index) lineage(inverse bool, rev storage.Revision, k Key, ids []string, now int64, limit int) (Lineage, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var t *tree
	if st := ix.st; st != nil && rev <= st.applied && now >= st.floor {
		if inverse {
			t = st.inverse[k]
		} else {
			t = st.trees[k]
		}
	}
	if t == nil || rev < t.since || len(t.odd) > 0 {
		ix.ancestorDeclines.Add(1)
		return Lineage{}, false
	}
	l, ok := t.lineage(ids, now, limit)
	if !ok {
		ix.ancestorDeclines.Add(1)
		return Lineage{}, false
	}
	ix.ancestorHits.Add(1)
	return l, true
}
