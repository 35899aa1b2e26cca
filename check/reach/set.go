package reach

import (
	"cmp"
	"slices"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Never is the until of a chain without an expiring relationship (the
// same value as check/dispatch.Never).
const Never int64 = 1<<63 - 1

// entry is one object of a flattened membership: the length of the
// shortest chain of relationships that puts the subject (or the nested
// object) in it, and until when the best of those shortest chains holds
// (the latest, among shortest chains, of each chain's earliest
// expiration; Never when one has no expiring relationship).
type entry struct {
	obj   uint32
	level int32
	until int64
}

// set is the index of one relation typ#rel. Object and subject numbers
// index the per-node slices. The flattened memberships are rebuilt, never
// changed in place, so a reader holding one keeps a consistent copy.
//
// Readers (Index.Holders) see only the names, the holders (up,
// minUntil), caveated and the counters, under the index's read lock; the
// edges and ancestors are the writer's alone, so it recomputes them
// without the lock (see Index.Apply).
type set struct {
	key Key
	// since is the revision of the last change to the relation (or of
	// the build's snapshot): the set's content holds at every revision
	// from since up to the index's applied revision.
	since storage.Revision
	// wildcard lists the subject types the schema allows as a wildcard.
	wildcard map[string]bool

	objects  names[string]
	subjects names[graph.ObjectRef]
	parents  []adj       // by object x: the objects whose relation holds x#rel
	children []adj       // by object: the objects x#rel it holds
	members  []adj       // by object: the plain subjects it holds directly
	memberOf []adj       // by subject: the objects holding it directly
	store    edgeStore   // the lists of parents, children, members and memberOf
	holders  holderStore // the holders up places

	anc      []entryRun     // by object x: the objects holding x#rel at any depth, by number
	ancs     chunked[entry] // the entries anc places
	up       []span         // by subject: where its holders (the objects holding it at any depth) are
	minUntil []int64        // by subject: the earliest until in up

	// caveated holds the relationships with a caveat, which the schema
	// does not allow but old data may carry: while any is stored the set
	// answers nothing.
	caveated map[graph.Key]struct{}

	ancEntries int // total length of anc
	// ancWords is the entries in ancs, dead ones included, as of the last
	// publish: the writer changes ancs without the lock, so readers of
	// bytes look here.
	ancWords   int
	upEntries  int // total length of up
	edges      int // direct relationships
	nameBytes  int // bytes of interned names
	scratchLvl map[uint32]entry
}

func newSet(k Key, wildcard map[string]bool) *set {
	return &set{key: k, wildcard: wildcard, caveated: make(map[graph.Key]struct{})}
}

// object returns the number of object id, growing the per-object slices.
func (s *set) object(id string) uint32 {
	n := s.objects.len()
	x := s.objects.intern(id)
	if s.objects.len() > n {
		s.parents = append(s.parents, adj{})
		s.children = append(s.children, adj{})
		s.members = append(s.members, adj{})
		s.anc = append(s.anc, entryRun{})
		s.nameBytes += len(id) + objectOverhead
	}
	return x
}

// subject returns the number of plain subject o, growing the per-subject
// slices.
func (s *set) subject(o graph.ObjectRef) uint32 {
	n := s.subjects.len()
	x := s.subjects.intern(o)
	if s.subjects.len() > n {
		s.memberOf = append(s.memberOf, adj{})
		s.up = append(s.up, span{})
		s.minUntil = append(s.minUntil, Never)
		s.nameBytes += len(o.Type) + len(o.ID) + subjectOverhead
	}
	return x
}

// Estimated bytes a name costs besides its strings: its place in the
// name table (16 bytes) and its share of the table's slots, which are
// between three eighths and three quarters full.
const (
	objectOverhead  = 32
	subjectOverhead = 32
)

// dirty is what a batch of changes invalidated: objects whose parents
// changed (their ancestors and those of every object below them) and
// subjects whose direct objects changed.
type dirty struct {
	roots    []uint32
	subjects map[uint32]struct{}
	uncaveat []graph.Key // caveated relationships deleted or replaced
}

func (d *dirty) subject(x uint32) {
	if d.subjects == nil {
		d.subjects = make(map[uint32]struct{})
	}
	d.subjects[x] = struct{}{}
}

// change applies a touch (del false) or delete of relationship r of the
// set's relation, recording what it invalidates in d. Subject sets other
// than typ#rel are ignored, as the walk ignores them.
func (s *set) change(r graph.Relationship, del bool, d *dirty) {
	nested := r.Subject.Relation != ""
	if nested && (r.Subject.Relation != s.key.Relation || r.Subject.Object.Type != s.key.Type) {
		return
	}
	if r.Caveat != nil && !del {
		s.caveated[r.Key()] = struct{}{}
	} else if _, ok := s.caveated[r.Key()]; ok {
		// Forgotten when the change is published: until then the
		// relation's earlier revisions, which hold it, stay declined.
		d.uncaveat = append(d.uncaveat, r.Key())
	}
	exp := Never
	if r.Expiration != nil {
		exp = r.Expiration.UnixNano()
	}
	p := s.object(r.Resource.ID)
	if nested {
		c := s.object(r.Subject.Object.ID)
		if del {
			if s.store.remove(&s.parents[c], p) {
				s.store.remove(&s.children[p], c)
				s.edges--
			}
		} else if s.store.set(&s.parents[c], p, exp) {
			s.store.set(&s.children[p], c, exp)
			s.edges++
		} else {
			s.store.set(&s.children[p], c, exp)
		}
		d.roots = append(d.roots, c)
		return
	}
	u := s.subject(r.Subject.Object)
	if del {
		if s.store.remove(&s.memberOf[u], p) {
			s.store.remove(&s.members[p], u)
			s.edges--
		}
	} else if s.store.set(&s.memberOf[u], p, exp) {
		s.store.set(&s.members[p], u, exp)
		s.edges++
	} else {
		s.store.set(&s.members[p], u, exp)
	}
	d.subject(u)
}

// refresh rebuilds the flattened memberships d invalidated and
// publishes them at once (for a build, which no reader sees yet).
func (s *set) refresh(d *dirty) {
	s.publish(s.recompute(d))
}

// update is recomputed content waiting to be published: the holders of
// the subjects it names, the change in the count of entries, and the
// caveated relationships deleted.
type update struct {
	up         map[uint32]span
	ancEntries int
	ancWords   int // the ancestor store's entries after the recompute
	uncaveat   []graph.Key
}

// recompute rebuilds what d invalidated: the ancestors of its roots and
// of every object below them, then the holders of its subjects and of
// every plain subject of those objects. It changes only what readers never
// see (the ancestors) and returns the holders for publish, so it runs
// without the index's lock.
func (s *set) recompute(d *dirty) update {
	u := update{up: make(map[uint32]span, len(d.subjects)), uncaveat: d.uncaveat}
	below := s.below(d.roots)
	for _, x := range below {
		s.setAncestors(x, s.ancestors(x), &u)
	}
	s.compactAncestors()
	u.ancWords = s.ancs.elements()
	for _, x := range below {
		for _, e := range s.store.edges(s.members[x]) {
			d.subject(e.to)
		}
	}
	for sub := range d.subjects {
		u.up[sub] = s.holders.pack(s.flatten(sub))
	}
	return u
}

// publish makes recomputed holders visible (under the index's write lock).
func (s *set) publish(u update) {
	s.ancEntries += u.ancEntries
	s.ancWords = u.ancWords
	for sub, h := range u.up {
		s.replaceUp(sub, h)
	}
	s.holders.compact(s.up)
	for _, k := range u.uncaveat {
		delete(s.caveated, k)
	}
}

// below returns roots and every object they hold through any depth,
// each once.
func (s *set) below(roots []uint32) []uint32 {
	seen := make(map[uint32]struct{}, len(roots))
	var out []uint32
	for _, r := range roots {
		if _, ok := seen[r]; !ok {
			seen[r] = struct{}{}
			out = append(out, r)
		}
	}
	for i := 0; i < len(out); i++ {
		for _, e := range s.store.edges(s.children[out[i]]) {
			if _, ok := seen[e.to]; !ok {
				seen[e.to] = struct{}{}
				out = append(out, e.to)
			}
		}
	}
	return out
}

// ancestors walks up from object x level by level and returns every
// object holding x#rel, sorted by number, with its shortest chain's
// length and the best until among its shortest chains. Every object at
// one level is final before the next level is walked.
func (s *set) ancestors(x uint32) []entry {
	seen := s.scratch()
	seen[x] = entry{obj: x, until: Never}
	frontier := []uint32{x}
	for level := int32(1); len(frontier) > 0; level++ {
		var next []uint32
		for _, y := range frontier {
			uy := seen[y].until
			for _, e := range s.store.edges(s.parents[y]) {
				u := min(uy, e.exp)
				if old, ok := seen[e.to]; ok {
					if old.level == level && u > old.until {
						old.until = u
						seen[e.to] = old
					}
					continue
				}
				seen[e.to] = entry{obj: e.to, level: level, until: u}
				next = append(next, e.to)
			}
		}
		frontier = next
	}
	delete(seen, x) // x holding itself through a cycle adds nothing
	return sortedEntries(seen)
}

// flatten returns the objects holding plain subject u at any depth: each
// object holding it directly (level 1) and their ancestors, one level
// further; among chains of the shortest length the best until wins.
func (s *set) flatten(u uint32) []entry {
	direct := s.store.edges(s.memberOf[u])
	if len(direct) <= mergeDirect {
		return s.merge(direct)
	}
	return s.flattenMap(direct)
}

// flattenMap computes flatten through a map, for any number of direct
// objects.
func (s *set) flattenMap(direct []edge) []entry {
	best := s.scratch()
	consider := func(obj uint32, level int32, until int64) {
		old, ok := best[obj]
		if !ok || level < old.level || (level == old.level && until > old.until) {
			best[obj] = entry{obj: obj, level: level, until: until}
		}
	}
	for _, e := range direct {
		consider(e.to, 1, e.exp)
		for _, a := range s.ancestorsOf(e.to) {
			consider(a.obj, a.level+1, min(e.exp, a.until))
		}
	}
	return sortedEntries(best)
}

// mergeDirect is the most direct objects a subject's holders are merged
// from (their ancestor lists are sorted); more go through a map.
const mergeDirect = 8

// merge computes flatten for a subject with few direct objects by
// merging, in object order, each direct object and its ancestors (one
// level further, until no later than the direct relationship).
func (s *set) merge(direct []edge) []entry {
	type run struct {
		es  []entry
		exp int64 // the direct relationship's expiration
		add int32 // levels added
	}
	var buf [2 * mergeDirect]run
	var selves [mergeDirect]entry
	runs := buf[:0]
	total := 0
	for i, e := range direct {
		selves[i] = entry{obj: e.to}
		anc := s.ancestorsOf(e.to)
		runs = append(runs, run{selves[i : i+1], e.exp, 1}, run{anc, e.exp, 1})
		total += 1 + len(anc)
	}
	out := make([]entry, 0, total)
	for {
		next, found := uint32(0), false
		for _, r := range runs {
			if len(r.es) > 0 && (!found || r.es[0].obj < next) {
				next, found = r.es[0].obj, true
			}
		}
		if !found {
			break
		}
		var best entry
		have := false
		for i := range runs {
			r := &runs[i]
			if len(r.es) == 0 || r.es[0].obj != next {
				continue
			}
			a := r.es[0]
			r.es = r.es[1:]
			c := entry{obj: next, level: a.level + r.add, until: r.exp}
			if a.level > 0 { // an ancestor, not the direct object itself
				c.until = min(r.exp, a.until)
			}
			if !have || c.level < best.level || (c.level == best.level && c.until > best.until) {
				best, have = c, true
			}
		}
		out = append(out, best)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// scratch returns the set's cleared scratch map (the set is changed by
// one goroutine at a time).
func (s *set) scratch() map[uint32]entry {
	if s.scratchLvl == nil {
		s.scratchLvl = make(map[uint32]entry)
	}
	clear(s.scratchLvl)
	return s.scratchLvl
}

// entryRun is where a run of entries is in a chunked store (see chunked).
type entryRun struct {
	at uint32
	n  uint32
}

// setAncestors replaces object x's ancestors with es.
func (s *set) setAncestors(x uint32, es []entry, u *update) {
	old := s.anc[x]
	u.ancEntries += len(es) - int(old.n)
	s.ancs.replaced(int(old.n), len(es))
	if len(es) == 0 {
		s.anc[x] = entryRun{}
		return
	}
	r := entryRun{at: s.ancs.alloc(len(es)), n: uint32(len(es))}
	copy(s.ancs.run(r.at, len(es)), es)
	s.anc[x] = r
}

// ancestorsOf returns object x's ancestors, which alias the store.
func (s *set) ancestorsOf(x uint32) []entry {
	r := s.anc[x]
	if r.n == 0 {
		return nil
	}
	return s.ancs.run(r.at, int(r.n))
}

// compactAncestors copies the ancestors into fresh chunks when the store
// wants it. Readers never see ancestors, so it needs no lock.
func (s *set) compactAncestors() {
	if !s.ancs.wantsCompaction() {
		return
	}
	var fresh chunked[entry]
	for x, r := range s.anc {
		if r.n > 0 {
			s.anc[x].at = fresh.copyFrom(&s.ancs, r.at, int(r.n))
		}
	}
	s.ancs.adopt(&fresh)
}

func sortedEntries(m map[uint32]entry) []entry {
	if len(m) == 0 {
		return nil
	}
	out := make([]entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return cmp.Compare(a.obj, b.obj) })
	return out
}

func (s *set) replaceUp(u uint32, h span) {
	old := s.up[u]
	s.upEntries += h.len() - old.len()
	s.holders.replaced(old, h)
	s.up[u] = h
	s.minUntil[u] = s.holders.view(h).minUntil()
}

// bytes estimates the set's memory.
func (s *set) bytes() int {
	n := s.ancWords*16 + s.holders.bytes() + s.nameBytes
	n += (len(s.parents) + len(s.children) + len(s.members)) * adjBytes
	n += len(s.anc)*8 + len(s.memberOf)*adjBytes + len(s.up)*8 + len(s.minUntil)*8
	n += s.store.bytes()
	return n
}
