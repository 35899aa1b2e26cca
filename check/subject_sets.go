package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
)

// Set evaluation for LookupSubjects: instead of collecting candidates and
// checking each one (a full check per subject), the subjects of a
// permission are computed as sets, bottom up, one batch of objects per
// type#relation at a time, with unions, intersections and exclusions
// applied to the sets. A subject's membership is three-valued (see
// member): a caveat the request's context does not decide makes it
// "maybe", and only those subjects are checked one by one.
//
// Each subject a set grants is also timed, as a check's answer is (see
// subjectSet.until): the instant before which the grant cannot end. Sets
// combine the untils as outcomes combine theirs, over every branch (a
// check stops at the first that grants), so where nothing that expires
// can grant more (setResult.loose), a subject's until is the end of its
// access: WhoCanAccess reads the rows' ends there without a check.
//
// The evaluation gives up (errSetFallback) where its answers could differ
// from a check's: a subject set request (a set has itself), and a chain
// of relationships deeper than the depth limit, which is also how
// relationship cycles end (a check resolves cycles with its frames; the
// candidate walk handles them).

// member is a subject's three-valued membership in a set.
type member uint8

const (
	memberNo    member = iota // the subject does not have it
	memberMaybe               // a check must decide (a caveat the context leaves open)
	memberYes                 // the subject has it, unconditionally
)

// not is the membership in a set's complement.
func (m member) not() member { return memberYes - m }

// subjectSet is a set of subjects of the requested type: every subject
// has membership def except those listed, keys[i] with vals[i]. keys
// lists them in the order they were added, so results stream in a
// stable order, and going through a set's list reads two slices and no
// map. index finds a listed subject's place in keys; it is built on the
// first lookup (see place), so a set that is only gone through, as most
// combinations are before they are combined again, never pays for one.
// It is published atomically: a set shared between goroutines (a
// cached one) is indexed by whichever looks first. A set is changed
// only while one goroutine builds it.
type subjectSet struct {
	def   member
	index atomic.Pointer[setIndex]
	keys  []subjectID
	vals  []member
	// A subject the set grants ("yes" or "maybe") has an until: the
	// instant before which that grant cannot end, as a check's
	// outcome.until is for its answer (see timeCombined, and
	// setResult.loose for when it is exactly the end): UnixNano, 0 for
	// never. ends holds the untils of the listed subjects (ends[i] for
	// keys[i]; nil: all defUntil), until those of the subjects the set
	// does not list that differ from defUntil (only a set that grants
	// everyone has any). Untils do not decide membership: a subject has
	// one whether the set grants it or not, meaningless when it does
	// not. A set that no expiring relationship led to has none but
	// defUntil 0 (see timed).
	ends     []int64
	until    map[subjectID]int64
	defUntil int64
	// why holds, in an evaluation that keeps proofs, why each subject
	// listed "yes" is (see proof), and defWhy why every subject not
	// listed is, when def is "yes"; a subject may lack one.
	why    map[subjectID]*proof
	defWhy *proof
}

// emptySet is the set no subject is in.
func emptySet() *subjectSet { return &subjectSet{} }

// setIndex maps a set's listed subjects to their places in its keys. It
// is an open-addressing table of places, probed linearly from a
// subject's Fibonacci hash and at most three quarters full, that
// compares a subject with the set's own keys: 4 bytes a slot, 5 to 11 a
// subject, where a Go map of the same pairs takes 10 to 21. The cached
// sets are mostly their indexes (see setMemberBytes), so the set cache
// holds more subjects in the same memory.
type setIndex struct {
	slots []int32 // a subject's place in keys plus one; 0: empty
	shift uint8   // 32 - log2(len(slots)): a hash's top bits pick the slot
	n     int     // slots in use
}

// newSetIndex returns an empty index with room for n subjects.
func newSetIndex(n int) *setIndex {
	size := 8
	for size*3 < n*4 {
		size <<= 1
	}
	return &setIndex{slots: make([]int32, size), shift: uint8(32 - bits.TrailingZeros(uint(size)))}
}

// home is the first slot probed for id.
func (ix *setIndex) home(id subjectID) uint32 {
	return (uint32(id) * 0x9e3779b1) >> ix.shift
}

// find returns where keys, the indexed set's, lists id, if it does.
func (ix *setIndex) find(keys []subjectID, id subjectID) (int32, bool) {
	mask := uint32(len(ix.slots) - 1)
	for h := ix.home(id); ; h = (h + 1) & mask {
		p := ix.slots[h]
		if p == 0 {
			return 0, false
		}
		if keys[p-1] == id {
			return p - 1, true
		}
	}
}

// put records that keys lists keys[place] at place, replacing the place
// recorded for the same subject, if any, and grows the table first when
// it would be over three quarters full.
func (ix *setIndex) put(keys []subjectID, place int32) {
	if (ix.n+1)*4 > len(ix.slots)*3 {
		ix.grow(keys)
	}
	id, mask := keys[place], uint32(len(ix.slots)-1)
	h := ix.home(id)
	for ; ix.slots[h] != 0; h = (h + 1) & mask {
		if keys[ix.slots[h]-1] == id {
			ix.slots[h] = place + 1
			return
		}
	}
	ix.slots[h] = place + 1
	ix.n++
}

// grow doubles the table, placing every recorded subject again.
func (ix *setIndex) grow(keys []subjectID) {
	old := ix.slots
	ix.slots, ix.shift = make([]int32, 2*len(old)), ix.shift-1
	mask := uint32(len(ix.slots) - 1)
	for _, p := range old {
		if p == 0 {
			continue
		}
		h := ix.home(keys[p-1])
		for ix.slots[h] != 0 {
			h = (h + 1) & mask
		}
		ix.slots[h] = p
	}
}

// place returns where s lists id, if it does.
func (s *subjectSet) place(id subjectID) (int32, bool) {
	if len(s.keys) == 0 {
		return 0, false
	}
	ix := s.index.Load()
	if ix == nil {
		ix = s.buildIndex()
	}
	return ix.find(s.keys, id)
}

// buildIndex indexes s's list, and returns the index published first.
func (s *subjectSet) buildIndex() *setIndex {
	ix := newSetIndex(len(s.keys))
	for i := range s.keys {
		ix.put(s.keys, int32(i))
	}
	if s.index.CompareAndSwap(nil, ix) {
		return ix
	}
	return s.index.Load()
}

// get returns id's membership.
func (s *subjectSet) get(id subjectID) member {
	if i, ok := s.place(id); ok {
		return s.vals[i]
	}
	return s.def
}

// listed returns id's membership if s lists id.
func (s *subjectSet) listed(id subjectID) (member, bool) {
	if i, ok := s.place(id); ok {
		return s.vals[i], true
	}
	return memberNo, false
}

// listedAs returns id's membership if s lists id, else "no".
func (s *subjectSet) listedAs(id subjectID) member {
	v, _ := s.listed(id)
	return v
}

// size returns how many subjects s lists.
func (s *subjectSet) size() int { return len(s.keys) }

// set records id's membership.
func (s *subjectSet) set(id subjectID, v member) {
	if i, ok := s.place(id); ok {
		s.vals[i] = v
		return
	}
	s.add(id, v)
}

// granted reports whether m grants, conditionally or not: what a
// subject's until times (see subjectSet.until).
func (m member) granted() bool { return m != memberNo }

// raise lifts id's membership to at least v, through a relationship
// (or chain) that holds until u (0: never): a subject the set grants
// already is then granted until the later of the two.
func (s *subjectSet) raise(id subjectID, v member, u int64) {
	if v == memberNo {
		return
	}
	i := s.placeOf(id) // one lookup: raise runs once per relationship
	cur := s.at(i)
	if cur.granted() {
		u = latest(s.untilAt(i, id), u)
	}
	switch {
	case cur >= v:
	case i != unlisted:
		s.vals[i] = v
	default:
		s.add(id, v)
		i = int32(len(s.keys) - 1)
	}
	if i != unlisted {
		s.setEnd(int(i), u)
	} else {
		s.setUnlistedUntil(id, u)
	}
}

// raiseAll lifts every subject's membership to at least v (a wildcard
// relationship, which holds until u).
func (s *subjectSet) raiseAll(v member, u int64) {
	if v == memberNo {
		return
	}
	if u != 0 || s.timed() {
		s.timeAll(u)
	}
	s.def = max(s.def, v)
	for i := range s.vals {
		s.vals[i] = max(s.vals[i], v)
	}
}

// timeAll sets the untils of s for every subject a wildcard that holds
// until u grants: the later of u and its own for a subject granted
// already, u for the others. Called before the memberships are raised.
func (s *subjectSet) timeAll(u int64) {
	wasGranted := s.def.granted()
	def := u
	if wasGranted {
		def = latest(s.defUntil, u)
	}
	ends := make([]int64, len(s.keys))
	differ := false
	for i := range s.keys {
		x := u
		if s.vals[i].granted() {
			x = latest(s.endAt(i), u)
		}
		ends[i] = x
		differ = differ || x != def
	}
	var unlisted map[subjectID]int64
	if wasGranted {
		for id, x := range s.until {
			if x = latest(x, u); x != def {
				if unlisted == nil {
					unlisted = make(map[subjectID]int64)
				}
				unlisted[id] = x
			}
		}
	}
	s.ends, s.until, s.defUntil = nil, unlisted, def
	if differ {
		s.ends = ends
	}
}

// untilOf returns when the set's grant of id may end (0: never);
// meaningless for a subject it does not grant.
func (s *subjectSet) untilOf(id subjectID) int64 {
	if s.ends == nil && s.until == nil {
		return s.defUntil
	}
	return s.untilAt(s.placeOf(id), id)
}

// untilAt is untilOf for id, which s lists at place i (or unlisted).
func (s *subjectSet) untilAt(i int32, id subjectID) int64 {
	if i != unlisted {
		return s.endAt(int(i))
	}
	if u, ok := s.until[id]; ok {
		return u
	}
	return s.defUntil
}

// endAt returns the until of the subject listed at i.
func (s *subjectSet) endAt(i int) int64 {
	if s.ends == nil {
		return s.defUntil
	}
	return s.ends[i]
}

// setEnd records u as the until of the subject listed at i.
func (s *subjectSet) setEnd(i int, u int64) {
	if s.ends == nil {
		if u == s.defUntil {
			return
		}
		s.ends = make([]int64, len(s.keys), cap(s.keys))
		for j := range s.ends {
			s.ends[j] = s.defUntil
		}
	}
	s.ends[i] = u
}

// setUntil records u as when the set's grant of id may end.
func (s *subjectSet) setUntil(id subjectID, u int64) {
	if i, ok := s.place(id); ok {
		s.setEnd(int(i), u)
		return
	}
	s.setUnlistedUntil(id, u)
}

// setUnlistedUntil is setUntil for a subject s does not list.
func (s *subjectSet) setUnlistedUntil(id subjectID, u int64) {
	if u == s.defUntil {
		if s.until != nil {
			delete(s.until, id)
		}
		return
	}
	if s.until == nil {
		s.until = make(map[subjectID]int64)
	}
	s.until[id] = u
}

// eachUntil calls f with each subject whose until differs from
// defUntil, and its until.
func (s *subjectSet) eachUntil(f func(id subjectID, u int64)) {
	if s.ends != nil {
		for i, id := range s.keys {
			if s.ends[i] != s.defUntil {
				f(id, s.ends[i])
			}
		}
	}
	for id, u := range s.until {
		f(id, u)
	}
}

// timed reports whether the grant of some subject may end. It may
// report a set whose untils were all set back to defUntil 0.
func (s *subjectSet) timed() bool { return s.defUntil != 0 || s.ends != nil || len(s.until) > 0 }

// empty reports whether no subject is in the set.
func (s *subjectSet) empty() bool {
	if s.def != memberNo {
		return false
	}
	for _, v := range s.vals {
		if v != memberNo {
			return false
		}
	}
	return true
}

// combine returns the pointwise combination of a and b by op.
func combine(a, b *subjectSet, op func(x, y member) member) *subjectSet {
	out := &subjectSet{def: op(a.def, b.def)}
	pairs(a, b, op, out, func(id subjectID, ia, ib int32) {
		if v := op(a.at(ia), b.at(ib)); v != out.def {
			out.add(id, v)
		}
	})
	return out
}

// unlisted stands for the place of a subject a set does not list.
const unlisted = int32(-1)

// at returns the membership of the subject at place i (or unlisted).
func (s *subjectSet) at(i int32) member {
	if i == unlisted {
		return s.def
	}
	return s.vals[i]
}

// placeOf returns where s lists id, or unlisted.
func (s *subjectSet) placeOf(id subjectID) int32 {
	if i, ok := s.place(id); ok {
		return i
	}
	return unlisted
}

// pairs calls visit with each subject whose membership in out, the
// combination of a and b by op, may differ from out's default, and its
// places in a and b (or unlisted), once each, after making room in out
// for them. Only the listed subjects of a set whose default op cannot
// change are visited: for an intersection with a set of default "no",
// its own list.
func pairs(a, b *subjectSet, op func(x, y member) member, out *subjectSet, visit func(id subjectID, ia, ib int32)) {
	// Each list names a subject once; b's subjects that a lists are
	// visited with a's.
	fromA := func() {
		for i, id := range a.keys {
			visit(id, int32(i), b.placeOf(id))
		}
	}
	fromB := func(skipA bool) {
		for i, id := range b.keys {
			ia := a.placeOf(id)
			if skipA && ia != unlisted {
				continue
			}
			visit(id, ia, int32(i))
		}
	}
	onlyA := out.def == memberNo && a.def == memberNo && op(memberNo, memberYes) == memberNo
	onlyB := out.def == memberNo && b.def == memberNo && op(memberYes, memberNo) == memberNo
	switch {
	case onlyA && onlyB && len(b.keys) < len(a.keys):
		// An intersection of two listed sets: the shorter list decides.
		out.grow(len(b.keys))
		fromB(false)
	case onlyA:
		out.grow(len(a.keys))
		fromA()
	case onlyB:
		out.grow(len(b.keys))
		fromB(false)
	default:
		out.grow(len(a.keys) + len(b.keys))
		fromA()
		fromB(true)
	}
}

// combineTimed returns the combination of a and b by op with its untils
// set as timeCombined sets them (noB as there). Where the combination
// grants nobody by default and no side's untils decide alone (see
// timedSparsely), which is where a lookup's intersections and exclusions
// of timed sets land, it sets each subject's until as it lists the
// subject, from the places just looked up, instead of looking every
// subject up again in all three sets.
func combineTimed(a, b *subjectSet, op func(x, y member) member, noB int64) *subjectSet {
	k := kindOf(op)
	if !timingNeeded(a, b, k, noB) || op(a.def, b.def).granted() || sparseTiming(a, b, k, noB) {
		out := combine(a, b, op)
		timeCombined(out, a, b, op, noB)
		return out
	}
	out := &subjectSet{}
	pairs(a, b, op, out, func(id subjectID, ia, ib int32) {
		ma, mb := a.at(ia), b.at(ib)
		v := op(ma, mb)
		if v == memberNo {
			return
		}
		out.addTimed(id, v, combinedUntil(k, ma, a.untilAt(ia, id), mb, b.untilAt(ib, id), noB))
	})
	return out
}

// combinedUntil returns the until of a subject granted by the
// combination of a and b by an operator of kind k, from its memberships
// and untils in a and b (see timeCombined).
func combinedUntil(k opKind, ma member, ua int64, mb member, ub int64, noB int64) int64 {
	switch {
	case k == opMinus:
		return earliest(ua, noB)
	case k == opIntersect:
		return earliest(ua, ub)
	case ma.granted() && mb.granted():
		return latest(ua, ub)
	case ma.granted():
		return ua
	}
	return ub
}

// opKind is the kind of an operator that combines sets.
type opKind uint8

const (
	opUnion opKind = iota
	opIntersect
	opMinus
)

// kindOf reads op's kind from its truth table.
func kindOf(op func(x, y member) member) opKind {
	switch {
	case op(memberYes, memberYes) == memberNo:
		return opMinus
	case op(memberNo, memberYes) == memberYes:
		return opUnion
	}
	return opIntersect
}

// timingNeeded reports whether the combination of a and b by an
// operator of kind k grants anyone for less than forever.
func timingNeeded(a, b *subjectSet, k opKind, noB int64) bool {
	return a.timed() || b.timed() || (k == opMinus && noB != 0)
}

// sparseTiming reports whether timedSparsely times the combination of a
// and b by an operator of kind k, when it grants nobody by default: one
// side's untils decide.
func sparseTiming(a, b *subjectSet, k opKind, noB int64) bool {
	switch k {
	case opMinus:
		return noB == 0
	case opIntersect:
		return !a.timed() || !b.timed()
	}
	return a.defUntil == 0 && b.defUntil == 0 && (!a.timed() || !b.timed())
}

// add lists id, which s does not list, with membership v.
func (s *subjectSet) add(id subjectID, v member) {
	s.keys = append(s.keys, id)
	s.vals = append(s.vals, v)
	if ix := s.index.Load(); ix != nil {
		ix.put(s.keys, int32(len(s.keys)-1))
	}
	// Its until, kept apart while it was not listed, moves with it.
	u := s.defUntil
	if s.until != nil {
		if x, ok := s.until[id]; ok {
			u = x
			delete(s.until, id)
		}
	}
	if s.ends != nil {
		s.ends = append(s.ends, u)
	} else if u != s.defUntil {
		s.setEnd(len(s.keys)-1, u)
	}
}

// addTimed lists id, which s does not list, with membership v and until
// u.
func (s *subjectSet) addTimed(id subjectID, v member, u int64) {
	s.add(id, v)
	s.setEnd(len(s.keys)-1, u)
}

func orMember(x, y member) member    { return max(x, y) }
func andMember(x, y member) member   { return min(x, y) }
func minusMember(x, y member) member { return min(x, y.not()) }

// timeCombined sets the untils of out, the combination of a and b by op,
// as outcome's operators combine a check's untils, read for a grant
// (conditional or not): a union grants until the latest of its granting
// sides' untils, an intersection until the earliest of both, an
// exclusion until the earlier of its base's until and the end of the
// subtracted side's refusal. That refusal is not timed per subject: noB
// is when b may change at all, its earliest expiration (0: never). The
// kind of op is read from its truth table.
func timeCombined(out, a, b *subjectSet, op func(x, y member) member, noB int64) {
	k := kindOf(op)
	if !timingNeeded(a, b, k, noB) {
		return
	}
	if !out.def.granted() && sparseTiming(a, b, k, noB) {
		timedSparsely(out, a, b, k)
		return
	}
	if out.def.granted() {
		out.defUntil = combinedUntil(k, a.def, a.defUntil, b.def, b.defUntil, noB)
	}
	at := func(id subjectID) {
		if out.get(id).granted() {
			// One lookup per side gives both its membership and its until.
			ia, ib := a.placeOf(id), b.placeOf(id)
			out.setUntil(id, combinedUntil(k, a.at(ia), a.untilAt(ia, id), b.at(ib), b.untilAt(ib, id), noB))
		}
	}
	for _, id := range out.keys {
		at(id)
	}
	if !out.def.granted() {
		return
	}
	// Subjects out grants by default whose untils may differ from the
	// default's: those a or b lists or times.
	for _, x := range []*subjectSet{a, b} {
		for _, id := range x.keys {
			at(id)
		}
		for id := range x.until {
			at(id)
		}
	}
}

// timedSparsely sets the untils of out, the combination of a and b by
// an operator of kind k, in the cases where one side's untils decide
// (sparseTiming), visiting only the subjects that side times. out's
// default grants nobody (nor, then, do a's and b's, for the operators
// that combine sets), so out lists whom it grants. The cases: an
// exclusion whose subtracted side never changes (noB 0) and an
// intersection with a side that never ends take the other side's
// untils; a union with a side that never ends takes the other's untils
// for the subjects only it grants.
func timedSparsely(out, a, b *subjectSet, k opKind) {
	switch {
	case k == opMinus, k == opIntersect && !b.timed():
		copyUntils(out, a)
	case k == opIntersect:
		copyUntils(out, b)
	default:
		x, y := a, b // x: the side with untils
		if !a.timed() {
			x, y = b, a
		}
		x.eachUntil(func(id subjectID, u int64) {
			if x.get(id).granted() && !y.get(id).granted() {
				out.setUntil(id, u)
			}
		})
	}
}

// copyUntils gives each subject out grants (all listed: out's default
// does not grant) src's until for it.
func copyUntils(out, src *subjectSet) {
	if src.defUntil == 0 && len(src.ends)+len(src.until) < len(out.keys) {
		src.eachUntil(func(id subjectID, u int64) {
			if i, ok := out.place(id); ok && out.vals[i].granted() {
				out.setEnd(int(i), u)
			}
		})
		return
	}
	for i, id := range out.keys {
		if out.vals[i].granted() {
			out.setEnd(i, src.untilOf(id))
		}
	}
}

// capped returns s with every membership lowered to at most c (the
// caveat of the relationship that leads to s) and every grant ending by
// u (its expiration, 0: never).
func capped(s *subjectSet, c member, u int64) *subjectSet {
	if c == memberYes && u == 0 {
		return s
	}
	out := &subjectSet{def: min(s.def, c)}
	timing := s.timed() || u != 0
	if timing && out.def.granted() {
		out.defUntil = earliest(s.defUntil, u)
	}
	out.grow(len(s.keys))
	for i, id := range s.keys {
		v := min(s.vals[i], c)
		switch {
		case v != out.def:
			out.add(id, v)
			if timing && v.granted() {
				out.setEnd(len(out.keys)-1, earliest(s.endAt(i), u))
			}
		case timing && v.granted():
			out.setUnlistedUntil(id, earliest(s.endAt(i), u))
		}
	}
	if timing && out.def.granted() {
		for id, x := range s.until {
			out.setUnlistedUntil(id, earliest(x, u))
		}
	}
	return out
}

// union returns s with x, capped at c and by u (the relationship that
// leads to x, its caveat and expiration), added: s itself, changed in
// place, when neither set holds everyone (the common case, linear in x).
// p, when set, is recorded as why each subject it lifts to "yes" is in s
// (a new set, for a wildcard, keeps no records).
func (s *subjectSet) union(x *subjectSet, c member, u int64, p *proof) *subjectSet {
	if s.def != memberNo || x.def != memberNo {
		cx := capped(x, c, u)
		out := combine(s, cx, orMember)
		timeCombined(out, s, cx, orMember, 0)
		if p != nil {
			proveUnion(out, s, p)
		}
		return out
	}
	s.grow(len(x.keys))
	for i, id := range x.keys {
		v := min(x.vals[i], c)
		if !v.granted() {
			continue
		}
		if p != nil && v == memberYes && s.listedAs(id) != memberYes {
			s.prove(id, p)
		}
		s.raise(id, v, earliest(x.endAt(i), u))
	}
	return s
}

// grow makes room for n more listed subjects in an unlisted set.
func (s *subjectSet) grow(n int) {
	if s.keys == nil && n > 0 {
		s.keys = make([]subjectID, 0, n)
		s.vals = make([]member, 0, n)
	}
}

// errSetFallback: set evaluation cannot answer this request exactly; the
// candidate walk and checks do.
var errSetFallback = errors.New("subject sets: fall back to checks")

// errSetsTooLarge: the sets of an evaluation bounded by maxEntries
// outgrew it; the caller evaluates fewer subjects at a time (see
// whoWindows).
var errSetsTooLarge = errors.New("subject sets: too many subjects to hold at once")

// setResult is the subject set of one object#relation and the longest
// chain of dispatches a check would take below it (see setEval.limit).
type setResult struct {
	set    *subjectSet
	height int
	// expires is the earliest expiration (UnixNano) of the relationships
	// read to compute the set, 0 if none expires: at a fixed revision the
	// set stays exact from the evaluation's instant until then.
	expires int64
	// caveated: a caveat was decided for the set, with the request's
	// context; otherwise the set is the same in every context.
	caveated bool
	// loose: a subject the set grants may be granted past its until
	// (see subjectSet.until), which is then only a lower bound on the
	// end of its access, as a check's is: an expiring relationship was
	// read whose expiry can grant more (on the subtracted side of an
	// exclusion, as the tupleset of a .all arrow). Otherwise the set
	// only loses subjects as time passes, and a subject's until is the
	// instant its access ends: every branch that grants it was evaluated
	// and timed.
	loose bool
	// ref, in an evaluation that keeps proofs, names the node whose set
	// an expression passed through unchanged (a relation or permission
	// of the same object), for the proofs that lead here.
	ref *setRef
}

// setEval is the state of one set evaluation.
type setEval struct {
	ev          *evaluation // reads storage and decides caveats; its subject is unused
	subjectType string
	// holds is what a subject of the requested type can hold at all: the
	// rest is empty without a read.
	holds holdable
	memo  map[node]setResult
	// busy counts the open batches evaluating each node. A batch that
	// meets a busy node evaluates it again: batches mix objects of
	// different levels (the teams cleared for a tier, one a sub-team of
	// another's sub-team), so a busy node is often no cycle at all, and a
	// node may be met busy once per level of its tree. A node met busy
	// more than maxReentries times is taken for a cycle, which set
	// evaluation leaves to checks (errSetFallback); reentered counts, so
	// the work stays bounded.
	busy      map[node]int
	reentered map[node]int
	// work counts the nodes evaluated, bounded by setWork; shared with
	// the evaluations narrowed from this one.
	work *int
	// entries counts the subjects listed in the sets memoized, shared with
	// the evaluations narrowed from this one: a measure of what the
	// evaluation holds. Past maxEntries (when not 0) it stops with
	// errSetsTooLarge.
	entries    *int
	maxEntries int
	// ids numbers the subjects the sets hold (see subjectIDs).
	ids *subjectIDs
	// only, when set, narrows the evaluation to these subjects: the
	// others are left out of every set (see narrowed).
	only map[subjectID]bool
	// onlyList is only's subjects in a stable order: the order the sets
	// an evaluation was narrowed from listed them (see narrowFor), or by
	// ID for a window (see onlyOrdered); onlyNames their IDs, sorted
	// (see onlySortedNames).
	onlyList  []subjectID
	onlyNames []string
	// onlyBitset is only as bits (see onlyBits).
	onlyBitset subjectBits
	// window: the evaluation is narrowed to a window of subjects whose
	// sets must still say what they grant everyone (def), for a wildcard
	// row; prune, which leaves out the objects none of the subjects
	// holds, does not apply. The evaluations narrowed from it prune.
	window bool
	// sweeps holds, per type#relation, the relationships naming a subject
	// in only, by resource ID (see readNarrowed).
	sweeps map[[2]string]map[string][]graph.Relationship
	// proofs: record why subjects are in sets (see proof).
	proofs bool
	// cache, when set, holds the sets computed whole by earlier
	// evaluations at the snapshot's revision (see setCache).
	cache *setCache
	// background marks a whole computation in the background (see
	// wholeInBackground): it caches only the sets it was asked for, not
	// the ones it computed on the way, which no request asked for and
	// which can be many times larger together (the 20,000 team sets below
	// a tier's clearance) and would evict the set they were computed for.
	background bool
	// held memoizes holders by type#relation (nil: too many, or not
	// looked up), monotoneMemo monotone.
	held         map[[2]string]map[string]bool
	monotoneMemo map[[2]string]bool
}

// narrowed returns an evaluation like se whose sets list only the
// subjects in only (and the wildcard): an intersection's or exclusion's
// later sides need no other subjects once the first side is known, and
// the sets of broad branches (everyone cleared for a tier) stay as small
// as the first side's.
func (se *setEval) narrowed(only map[subjectID]bool, list []subjectID) *setEval {
	return &setEval{ev: se.ev, subjectType: se.subjectType, holds: se.holds, ids: se.ids, memo: make(map[node]setResult),
		busy: make(map[node]int), reentered: make(map[node]int), work: se.work, entries: se.entries, maxEntries: se.maxEntries,
		only: only, onlyList: list, proofs: se.proofs, cache: se.cache}
}

// narrowMax bounds the subjects an evaluation is narrowed to.
const narrowMax = 1 << 16

// maxReentries bounds how often a node may be met while it is being
// evaluated (see setEval.busy).
const maxReentries = 8

// setWork bounds the nodes one set evaluation evaluates before it leaves
// the request to the candidate walk and checks.
const setWork = 1 << 18

// newSetEval prepares a set evaluation of subjects of subjectType in ev.
func newSetEval(ev *evaluation, subjectType string) *setEval {
	return &setEval{ev: ev, subjectType: subjectType, memo: make(map[node]setResult),
		busy: make(map[node]int), reentered: make(map[node]int), work: new(int), entries: new(int),
		holds: ev.eng.holdable.get(ev.schema, schema.Node{Type: subjectType}), ids: ev.eng.subjectIDTable()}
}

// batch returns the subject sets of rel on each of ids of typ, evaluated
// at check depth depth.
func (se *setEval) batch(typ, rel string, ids []string, depth int) ([]setResult, error) {
	if err := se.ev.ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]setResult, len(ids))
	def := se.ev.schema.Definitions[typ]
	if def == nil || !def.Has(rel) || !se.holds[schema.Node{Type: typ, Relation: rel}] {
		for i := range out {
			out[i] = setResult{set: emptySet()}
		}
		return out, nil
	}
	var pending []string
	var at []int
	for i, id := range ids {
		if r, ok := se.memo[node{typ, id, rel}]; ok {
			out[i] = r
			continue
		}
		pending = append(pending, id)
		at = append(at, i)
	}
	// Many subjects' holders, found upward at once, prune before the
	// cache: a cached set is restricted to the subjects at a cost, and
	// the 4,000 teams cleared for a tier are cached whole where a few
	// hundred subjects are in a few hundred of them. A few subjects'
	// holders (a lookup each) are looked up for the sets not cached.
	early := len(se.only) >= se.ev.eng.narrow.reachedMin
	var err error
	if early {
		if pending, at, err = se.prune(typ, rel, pending, at, out); err != nil {
			return nil, err
		}
	}
	if pending, at, err = se.fromCache(typ, rel, depth, pending, at, out); err != nil {
		return nil, err
	}
	if !early {
		if pending, at, err = se.prune(typ, rel, pending, at, out); err != nil {
			return nil, err
		}
	}
	if len(pending) > 0 {
		*se.work += len(pending)
		if depth > se.ev.eng.cfg.MaxDepth || *se.work > setWork {
			return nil, errSetFallback
		}
		for _, id := range pending {
			n := node{typ, id, rel}
			if se.busy[n] > 0 {
				if se.reentered[n] >= maxReentries {
					return nil, errSetFallback
				}
				se.reentered[n]++
			}
			se.busy[n]++
		}
		defer func() {
			for _, id := range pending {
				se.busy[node{typ, id, rel}]--
			}
		}()
		var res []setResult
		if p := def.Permissions[rel]; p != nil {
			// A few objects' rows are read whole first (see
			// evaluation.prefetch): a resource, its project, an org
			// then cost one query instead of one per relation. Large
			// batches (teams) are read relation by relation, or
			// narrowed by subject (see readNarrowed).
			if len(pending) < se.ev.eng.narrow.sweepMin {
				if err := se.ev.prefetch(typ, pending); err != nil {
					return nil, err
				}
			}
			res, err = se.expr(typ, pending, p.Expr, rel, depth)
		} else {
			res, err = se.relation(typ, pending, def.Relations[rel], depth)
		}
		if err != nil {
			return nil, err
		}
		if se.maxEntries > 0 {
			for _, r := range res {
				*se.entries += r.set.size()
			}
			if *se.entries > se.maxEntries {
				return nil, errSetsTooLarge
			}
		}
		caching := se.cache != nil && se.only == nil
		var deps [][2]string
		how := putOnTheWay
		if caching {
			deps = se.cache.dependencies(se.ev.schema, typ, rel)
			if se.background {
				how = putSpare
			}
		}
		for j, i := range at {
			out[i] = res[j]
			se.memo[node{typ, pending[j], rel}] = res[j]
			if caching {
				se.cache.put(se.cacheKey(typ, pending[j], rel, res[j].caveated), res[j], se.ev.nowNano, se.ev.rev, se.ids, deps, how)
			}
		}
	}
	for _, r := range out {
		if depth+r.height > se.ev.eng.cfg.MaxDepth {
			return nil, errSetFallback
		}
	}
	return out, nil
}

// pruneSubjectsMax is the most subjects whose holders prune looks up one
// by one, a LookupResources each (see holders).
const pruneSubjectsMax = 16

// narrowTuning is when a narrowed evaluation reads by subject and prunes
// by the objects found upward from its subjects. An engine takes
// defaultNarrowing when it is made; tests lower it to take those paths
// on small worlds.
type narrowTuning struct {
	// sweepMin is the batch size from which a narrowed evaluation reads
	// a relation's plain subjects by subject (see readNarrowed).
	sweepMin int
	// reachedMin is the fewest subjects an evaluation is narrowed to for
	// prune to find their holders all at once (see reachedBy), and
	// reachedRatio how many times the objects pruned they may be.
	reachedMin, reachedRatio int
}

var defaultNarrowing = narrowTuning{sweepMin: 16, reachedMin: pruneSubjectsMax + 1, reachedRatio: 2}

// pruneLookupMax bounds the objects one subject's lookup in holders may
// find; past it the objects are evaluated without pruning.
const pruneLookupMax = 4096

// prune, in a narrowed evaluation, decides the sets of a monotone
// type#relation's pending objects that hold none of its subjects —
// empty — without evaluating them, and returns the others (with their
// positions in out).
// The later side of an intersection or exclusion, narrowed to the
// subjects its first side left, is often broad downward (a tier cleared
// for every member of 4,000 teams, and their agents) and narrow upward
// (an agent's principal is in a few teams; a project's few hundred
// readers are in a few hundred): the objects of typ that hold a subject
// are looked up from the subjects, once per type#relation (see holders),
// and only those are evaluated.
func (se *setEval) prune(typ, rel string, pending []string, at []int, out []setResult) ([]string, []int, error) {
	if se.only == nil || se.window || len(pending) == 0 || !se.monotone(typ, rel) {
		// A set that subtracts may gain a subject it lacks now when a
		// subtracted relationship expires, at an instant the lookup
		// does not say: its emptiness would hold only now, and the
		// sets cached above it are reused later.
		return pending, at, nil
	}
	if tune := se.ev.eng.narrow; len(se.only) >= tune.reachedMin && (len(pending) < tune.sweepMin || len(se.only) > tune.reachedRatio*len(pending)) {
		// Many subjects are found upward (see reachedBy) by reading
		// their relationships: worth it to prune many more objects.
		return pending, at, nil
	}
	if r := se.ev.schema.Definitions[typ].Relations[rel]; r != nil && !slices.ContainsFunc(r.Allowed, func(a schema.AllowedSubject) bool { return a.Relation != "" }) {
		// A relation of plain subjects on objects whose rows were read
		// whole costs no query: looking its holders up would. (One
		// that holds subject sets leads on to evaluate them.)
		var small [16][]graph.Relationship
		if _, read := se.ev.prefetchedRows(typ, pending, small[:0]); read {
			return pending, at, nil
		}
	}
	held, ok, err := se.holders(typ, rel, len(pending))
	if err != nil || !ok {
		return pending, at, err
	}
	keep, keepAt := pending[:0:0], at[:0:0]
	for j, id := range pending {
		if held[id] {
			keep, keepAt = append(keep, id), append(keepAt, at[j])
			continue
		}
		// Empty now, and later: a monotone set only loses subjects as
		// its relationships expire.
		r := setResult{set: emptySet()}
		out[at[j]] = r
		se.memo[node{typ, id, rel}] = r
	}
	return keep, keepAt, nil
}

// holders returns the objects of typ on which some subject of se.only
// may have rel, memoized: for fewer than narrowTuning.reachedMin subjects by one
// LookupResources per subject, for more all at once upward from them
// where rel's shape allows (see reachedBy); ok is false when a lookup
// found more than pruneLookupMax objects or could not run, or reachedBy
// declines.
func (se *setEval) holders(typ, rel string, pending int) (map[string]bool, bool, error) {
	k := [2]string{typ, rel}
	if h, done := se.held[k]; done {
		return h, h != nil, nil
	}
	if se.held == nil {
		se.held = make(map[[2]string]map[string]bool)
	}
	se.held[k] = nil
	if len(se.only) >= se.ev.eng.narrow.reachedMin {
		held, ok, err := se.reachedBy(typ, rel, pending)
		if err != nil || !ok {
			return nil, false, err
		}
		se.held[k] = held
		return held, true, nil
	}
	held := map[string]bool{}
	snap := Snapshot{Schema: se.ev.schema, Reader: se.ev.raw}
	subjects := se.onlySortedNames()
	for _, id := range subjects {
		req := LookupResourcesRequest{ResourceType: typ, Permission: rel, Context: se.ev.caveatCtx, Now: se.ev.now,
			Subject: graph.SubjectRef{Object: graph.ObjectRef{Type: se.subjectType, ID: id}}, Limit: pruneLookupMax + 1}
		found := 0
		err := se.ev.eng.LookupResources(se.ev.ctx, snap, req, func(r ResourceResult) bool {
			found++
			held[r.ID] = true
			return true
		})
		if ctxErr := se.ev.ctx.Err(); ctxErr != nil {
			return nil, false, ctxErr
		}
		if err != nil || found > pruneLookupMax {
			return nil, false, nil // evaluate them all: the evaluation reports what is wrong
		}
	}
	se.held[k] = held
	return held, true, nil
}

// monotone reports whether typ#rel is built from unions, relations and
// any-arrows alone (see monotoneFrom), memoized.
func (se *setEval) monotone(typ, rel string) bool {
	k := [2]string{typ, rel}
	m, ok := se.monotoneMemo[k]
	if !ok {
		_, m = monotoneFrom(se.ev.schema, typ, rel)
		if se.monotoneMemo == nil {
			se.monotoneMemo = make(map[[2]string]bool)
		}
		se.monotoneMemo[k] = m
	}
	return m
}

// edgeTo is a relationship from the batch resource at index i to an
// object whose relation's set it contributes, capped at c and by its
// expiration u (0: never); p, in an evaluation that keeps proofs, is the
// step the relationship adds to a path (targets fills in its set).
type edgeTo struct {
	i  int
	id string
	c  member
	u  int64
	p  *proof
}

// targets evaluates the sets of rel on the objects edges lead to, one
// batch per type, and unions each into its resource's set.
func (se *setEval) targets(byType map[string][]edgeTo, order []string, rel string, depth int, out []setResult) error {
	for _, t := range order {
		edges := byType[t]
		ids := make([]string, 0, len(edges))
		seen := make(map[string]bool, len(edges))
		for _, e := range edges {
			if !seen[e.id] {
				seen[e.id] = true
				ids = append(ids, e.id)
			}
		}
		res, err := se.batch(t, rel, ids, depth+1)
		if err != nil {
			return err
		}
		pos := make(map[string]int, len(ids))
		for k, id := range ids {
			pos[id] = k
		}
		var refs []*setRef
		if se.proofs {
			refs = make([]*setRef, len(ids))
			for k, id := range ids {
				refs[k] = refOf(res[k], node{t, id, rel})
			}
		}
		for _, e := range edges {
			k := pos[e.id]
			r := res[k]
			if e.p != nil {
				e.p.in = refs[k]
			}
			out[e.i].set = out[e.i].set.union(r.set, e.c, e.u, e.p)
			out[e.i].height = max(out[e.i].height, r.height+1)
			out[e.i].expires = earliest(out[e.i].expires, r.expires)
			out[e.i].caveated = out[e.i].caveated || r.caveated
			out[e.i].loose = out[e.i].loose || r.loose
		}
	}
	return nil
}

// caveatMember decides a relationship's caveat for the request: no,
// maybe (the context leaves it open, or fails to evaluate it: the check
// of the subjects it leads to reports the error) or yes.
func (se *setEval) caveatMember(r *graph.Relationship) (member, error) {
	o, err := se.ev.caveat(r)
	if err != nil {
		return memberMaybe, nil
	}
	switch o.perm {
	case HasPermission:
		return memberYes, nil
	case Conditional:
		return memberMaybe, nil
	}
	return memberNo, nil
}

// relation evaluates relation r of typ on ids: plain subjects of the
// requested type (a wildcard where r allows one) are members, and the
// subject sets r allows contribute their sets, as a check counts them.
func (se *setEval) relation(typ string, ids []string, r *schema.Relation, depth int) ([]setResult, error) {
	out := make([]setResult, len(ids))
	for i := range out {
		out[i].set = emptySet()
	}
	ix := newIndex(ids)
	byType := map[string][]edgeTo{}
	var order []string
	var cerr error
	// The subjects and wildcards met are applied once the read is done,
	// in the order met, with their IDs numbered together.
	var grants []grant
	var names []string
	read := func(fn func(graph.Relationship)) error { return se.readBatch(typ, r.Name, ids, fn) }
	if se.only != nil && len(ids) >= se.ev.eng.narrow.sweepMin {
		read = func(fn func(graph.Relationship)) error { return se.readNarrowed(typ, ids, r, fn) }
	}
	err := read(func(rel graph.Relationship) {
		i := ix.find(rel.Resource.ID)
		if i < 0 || cerr != nil {
			return
		}
		out[i].expires = earliest(out[i].expires, expiresAt(&rel))
		sub := rel.Subject
		if sub.Relation == "" && sub.Object.Type != se.subjectType {
			return
		}
		if sub.Relation != "" && !allowedSubject(r, sub) {
			return
		}
		if rel.Caveat != nil {
			out[i].caveated = true
		}
		c, err := se.caveatMember(&rel)
		if err != nil {
			cerr = err
			return
		}
		if c == memberNo {
			return
		}
		u := expiresAt(&rel)
		// A proof is recorded for a subject granted "yes".
		proveStep := func() *proof {
			if c != memberYes {
				return nil
			}
			return se.step(rel.Resource, r.Name, "", &rel)
		}
		switch {
		case sub.Relation != "":
			k := sub.Object.Type + "#" + sub.Relation
			if _, ok := byType[k]; !ok {
				order = append(order, k)
			}
			byType[k] = append(byType[k], edgeTo{i: i, id: sub.Object.ID, c: c, u: u, p: se.step(rel.Resource, r.Name, "", &rel)})
		case sub.Object.ID == graph.Wildcard:
			if allowsWildcard(r, sub.Object.Type) {
				grants = append(grants, grant{i: i, c: c, u: u, p: proveStep(), all: true})
			}
		default:
			grants = append(grants, grant{i: i, name: len(names), c: c, u: u, p: proveStep()})
			names = append(names, sub.Object.ID)
		}
	})
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	if err := se.apply(grants, names, out); err != nil {
		return nil, err
	}
	// Subject sets: one batch per type#relation.
	for _, k := range order {
		t, rel := splitSetKey(k)
		if err := se.targets(map[string][]edgeTo{t: byType[k]}, []string{t}, rel, depth, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// grant is a relationship naming a subject of the requested type (the
// names[name] of relation's read), or a wildcard (all), that grants it
// to the batch resource at index i, capped at c and by its expiration u
// (0: never); p is its proof step in an evaluation that keeps them.
type grant struct {
	i, name int
	c       member
	u       int64
	p       *proof
	all     bool
}

// apply adds grants, in order, to the sets of out: each named subject
// (numbered now, all at once; in a narrowed evaluation only those it is
// narrowed to, which are numbered already) and each wildcard.
func (se *setEval) apply(grants []grant, names []string, out []setResult) error {
	nums := make([]subjectID, len(names))
	if se.only != nil {
		se.ids.numbersOf(names, nums) // unnumbered: not among se.only
	} else if !se.ids.internAll(names, nums) {
		return errSetFallback // too many subjects to number: leave them to checks
	}
	for _, g := range grants {
		set := out[g.i].set
		if g.all {
			if g.p != nil {
				set.proveAll(g.p)
			}
			set.raiseAll(g.c, g.u)
			continue
		}
		id := nums[g.name]
		if se.only != nil && !se.only[id] {
			continue
		}
		if g.p != nil && set.get(id) != memberYes {
			set.prove(id, g.p)
		}
		set.raise(id, g.c, g.u)
	}
	return nil
}

// relationObjectReader reads one relation of a batch of objects object by
// object, sharing each object's rows between batches, as
// storage/readcache's readers do (see readcache's QueryRelationObjects).
type relationObjectReader interface {
	QueryRelationObjects(ctx context.Context, typ, rel string, ids []string, opts storage.QueryOptions) ([][]graph.Relationship, error)
}

// readBatch calls fn for each relationship of typ#rel on ids, in resource
// ID order as one query returns them: through a relationObjectReader when
// the snapshot has one, so the batches of different lookups share the
// objects they have in common, else with one query.
func (se *setEval) readBatch(typ, rel string, ids []string, fn func(graph.Relationship)) error {
	ev := se.ev
	rr, ok := ev.reader.(relationObjectReader)
	if !ok || len(ids) < 2 {
		return ev.read(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: rel}, fn)
	}
	if ev.prefetched(typ, ids, rel, fn) {
		return nil
	}
	ev.eng.queries.Add(1)
	rows, err := rr.QueryRelationObjects(ev.ctx, typ, rel, ids, ev.opts())
	if err != nil {
		return fmt.Errorf("query %s#%s: %w", typ, rel, err)
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ids[a], ids[b]) })
	for k, i := range order {
		if k > 0 && ids[order[k-1]] == ids[i] {
			continue
		}
		for _, x := range rows[i] {
			fn(x)
		}
	}
	return nil
}

// readNarrowed calls fn for the relationships of r on ids that a narrowed
// evaluation needs: those naming a subject it is narrowed to, read once
// per relation by subject through the reverse index (a few queries for a
// few hundred subjects, where the teams cleared for a tier have tens of
// thousands of members), then wildcards and subject sets, read forward.
func (se *setEval) readNarrowed(typ string, ids []string, r *schema.Relation, fn func(graph.Relationship)) error {
	rows, err := se.sweep(typ, r.Name)
	if err != nil {
		return err
	}
	for _, id := range ids {
		for _, x := range rows[id] {
			fn(x)
		}
	}
	ellipsis := ""
	if allowsWildcard(r, se.subjectType) {
		if err := se.ev.query(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: r.Name,
			Subject: &storage.SubjectFilter{Type: se.subjectType, IDs: []string{graph.Wildcard}, Relation: &ellipsis}}, fn); err != nil {
			return err
		}
	}
	for k, a := range r.Allowed {
		if a.Relation == "" || slices.ContainsFunc(r.Allowed[:k], func(b schema.AllowedSubject) bool {
			return b.Type == a.Type && b.Relation == a.Relation
		}) {
			continue
		}
		rel := a.Relation
		if err := se.ev.query(storage.Filter{ResourceType: typ, ResourceIDs: ids, Relation: r.Name,
			Subject: &storage.SubjectFilter{Type: a.Type, Relation: &rel}}, fn); err != nil {
			return err
		}
	}
	return nil
}

// sweep returns, by resource ID, the relationships of typ#rel naming one
// of the subjects the evaluation is narrowed to, read once.
func (se *setEval) sweep(typ, rel string) (map[string][]graph.Relationship, error) {
	k := [2]string{typ, rel}
	if rows, ok := se.sweeps[k]; ok {
		return rows, nil
	}
	if se.sweeps == nil {
		se.sweeps = make(map[[2]string]map[string][]graph.Relationship)
	}
	subjects := se.onlySortedNames()
	rows := make(map[string][]graph.Relationship)
	ellipsis := ""
	chunk := se.ev.eng.cfg.ChunkSize
	for start := 0; start < len(subjects); start += chunk {
		part := subjects[start:min(start+chunk, len(subjects))]
		if err := se.ev.reverse(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: se.subjectType, IDs: part, Relation: &ellipsis},
			ResourceType: typ, Relation: rel}, func(x graph.Relationship) {
			rows[x.Resource.ID] = append(rows[x.Resource.ID], x)
		}); err != nil {
			return nil, err
		}
	}
	se.sweeps[k] = rows
	return rows, nil
}

// splitSetKey splits "type#relation".
func splitSetKey(k string) (string, string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '#' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

// step returns, in an evaluation that keeps proofs, the path step to
// obj#rel over a copy of rship by way of arrow via (nil otherwise).
func (se *setEval) step(obj graph.ObjectRef, rel, via string, rship *graph.Relationship) *proof {
	if !se.proofs {
		return nil
	}
	c := *rship
	return &proof{step: true, obj: obj, rel: rel, via: via, rship: &c}
}

// expr evaluates a permission expression on ids of typ; perm names the
// permission (for proofs).
func (se *setEval) expr(typ string, ids []string, x schema.Expr, perm string, depth int) ([]setResult, error) {
	switch x := x.(type) {
	case *schema.Nil:
		out := make([]setResult, len(ids))
		for i := range out {
			out[i].set = emptySet()
		}
		return out, nil
	case *schema.RelationRef:
		res, err := se.batch(typ, x.Name, ids, depth+1)
		if err != nil {
			return nil, err
		}
		out := make([]setResult, len(res))
		for i, r := range res {
			out[i] = setResult{set: r.set, height: r.height + 1, expires: r.expires, caveated: r.caveated, loose: r.loose}
			if se.proofs {
				out[i].ref = refOf(r, node{typ, ids[i], x.Name})
			}
		}
		return out, nil
	case *schema.Arrow:
		if !se.arrowHoldable(typ, x) {
			return se.expr(typ, ids, &schema.Nil{}, perm, depth)
		}
		return se.arrow(typ, ids, x, perm, depth)
	case *schema.Union:
		return se.fold(typ, ids, x.Children, perm, depth, orMember, false, func(*subjectSet) bool { return false })
	case *schema.Intersection:
		return se.fold(typ, ids, x.Children, perm, depth, andMember, true, (*subjectSet).empty)
	case *schema.Exclusion:
		return se.fold(typ, ids, []schema.Expr{x.Base, x.Subtracted}, perm, depth, minusMember, true, (*subjectSet).empty)
	}
	return nil, errSetFallback
}

// fold combines the children's sets on each ID by op, left to right. An
// ID whose set is decided (done: an intersection or exclusion that is
// already empty) skips the later children, which, with narrow set (an
// intersection or exclusion), are evaluated narrowed (see narrowFor).
func (se *setEval) fold(typ string, ids []string, children []schema.Expr, perm string, depth int, op func(x, y member) member, narrow bool, done func(*subjectSet) bool) ([]setResult, error) {
	// combine leaves its inputs alone, so the first child's (possibly
	// memoized) sets need no copy.
	out, err := se.expr(typ, ids, children[0], perm, depth)
	if err != nil {
		return nil, err
	}
	out = slices.Clone(out)
	for _, c := range children[1:] {
		var open []int
		for i := range out {
			if !done(out[i].set) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		later := se
		if narrow {
			later = se.narrowFor(out, open)
		}
		res, err := later.expr(typ, pick(ids, open), c, perm, depth)
		if err != nil {
			return nil, err
		}
		for j, i := range open {
			set := combineTimed(out[i].set, res[j].set, op, res[j].expires)
			if se.proofs {
				proveCombined(set, out[i], res[j], op)
			}
			// A subtracted side that may change as time passes (it read
			// an expiring relationship) may give subjects back.
			subtracts := op(memberYes, memberYes) == memberNo
			out[i] = setResult{set: set, height: max(out[i].height, res[j].height), expires: earliest(out[i].expires, res[j].expires),
				caveated: out[i].caveated || res[j].caveated, loose: out[i].loose || res[j].loose || (subtracts && res[j].expires != 0)}
		}
	}
	return out, nil
}

// narrowFor returns the evaluation for the later sides of an
// intersection or exclusion whose sets so far are out[open]: narrowed to
// their listed subjects when none of them holds everyone (whatever the
// later sides say of another subject, it stays out), else se itself.
func (se *setEval) narrowFor(out []setResult, open []int) *setEval {
	n := 0
	for _, i := range open {
		if out[i].set.def != memberNo {
			return se
		}
		n += len(out[i].set.keys)
	}
	if n > narrowMax {
		return se
	}
	only := make(map[subjectID]bool, n)
	list := make([]subjectID, 0, n)
	for _, i := range open {
		s := out[i].set
		for k, id := range s.keys {
			if s.vals[k] != memberNo && (se.only == nil || se.only[id]) && !only[id] {
				only[id] = true
				list = append(list, id)
			}
		}
	}
	return se.narrowed(only, list)
}

// cloneResults copies the results' sets, which may be memoized, so they
// can be changed in place.
func cloneResults(rs []setResult) []setResult {
	out := make([]setResult, len(rs))
	for i, r := range rs {
		s := &subjectSet{def: r.set.def, keys: slices.Clone(r.set.keys), vals: slices.Clone(r.set.vals), ends: slices.Clone(r.set.ends), defUntil: r.set.defUntil}
		if ix := r.set.index.Load(); ix != nil {
			s.index.Store(&setIndex{slots: slices.Clone(ix.slots), shift: ix.shift, n: ix.n})
		}
		if r.set.until != nil {
			s.until = maps.Clone(r.set.until)
		}
		out[i] = setResult{set: s, height: r.height, expires: r.expires, caveated: r.caveated, loose: r.loose}
	}
	return out
}

// arrow evaluates tupleset->target (or .any/.all) on ids: the union (for
// .all, the intersection, and empty without a related object) of the
// target's sets on the related objects, each capped by its relationship's
// caveat.
func (se *setEval) arrow(typ string, ids []string, a *schema.Arrow, perm string, depth int) ([]setResult, error) {
	out := make([]setResult, len(ids))
	for i := range out {
		out[i].set = emptySet()
	}
	ix := newIndex(ids)
	byType := map[string][]edgeTo{}
	var order []string
	var cerr error
	err := se.readBatch(typ, a.Tupleset, ids, func(rel graph.Relationship) {
		i := ix.find(rel.Resource.ID)
		if i < 0 || cerr != nil {
			return
		}
		out[i].expires = earliest(out[i].expires, expiresAt(&rel))
		t := rel.Subject.Object.Type
		if d := se.ev.schema.Definitions[t]; d == nil || !d.Has(a.Target) {
			if a.Func == schema.ArrowAll {
				cerr = errSetFallback // a related object that grants nothing: leave .all to checks
			}
			return
		}
		if rel.Caveat != nil {
			out[i].caveated = true
		}
		c, err := se.caveatMember(&rel)
		if err != nil {
			cerr = err
			return
		}
		if a.Func == schema.ArrowAll && c != memberYes {
			cerr = errSetFallback
			return
		}
		if c == memberNo {
			return
		}
		u := expiresAt(&rel)
		if a.Func == schema.ArrowAll && u != 0 {
			// A .all's related object that expires leaves the
			// intersection, which may grant more.
			out[i].loose = true
		}
		if _, ok := byType[t]; !ok {
			order = append(order, t)
		}
		var p *proof
		if a.Func != schema.ArrowAll {
			p = se.step(graph.ObjectRef{Type: typ, ID: ids[i]}, perm, a.Tupleset+"->"+a.Target, &rel)
		}
		byType[t] = append(byType[t], edgeTo{i: i, id: rel.Subject.Object.ID, c: c, u: u, p: p})
	})
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	if a.Func == schema.ArrowAll {
		if err := se.arrowAll(byType, order, a.Target, depth, out); err != nil {
			return nil, err
		}
		return out, nil
	}
	if err := se.targets(byType, order, a.Target, depth, out); err != nil {
		return nil, err
	}
	return out, nil
}

// arrowHoldable reports whether the target of arrow a on typ can hold a
// subject of the requested type on some type its tupleset allows.
func (se *setEval) arrowHoldable(typ string, a *schema.Arrow) bool {
	r := se.ev.schema.Definitions[typ].Relations[a.Tupleset]
	if r == nil {
		return false
	}
	for _, al := range r.Allowed {
		if se.holds[schema.Node{Type: al.Type, Relation: a.Target}] {
			return true
		}
	}
	return false
}

// arrowAll intersects, per resource, the target's sets on every related
// object (all uncaveated, see arrow); a resource without one gets the
// empty set.
func (se *setEval) arrowAll(byType map[string][]edgeTo, order []string, target string, depth int, out []setResult) error {
	seen := make([]bool, len(out))
	for _, t := range order {
		edges := byType[t]
		ids := make([]string, 0, len(edges))
		for _, e := range edges {
			ids = append(ids, e.id)
		}
		res, err := se.batch(t, target, ids, depth+1)
		if err != nil {
			return err
		}
		for k, e := range edges {
			r := res[k]
			// The relationship holds the target's "yes" until it expires
			// (and, in the intersection, no longer counts then).
			target := capped(r.set, memberYes, e.u)
			loose := out[e.i].loose || r.loose
			if !seen[e.i] {
				seen[e.i] = true
				if target == r.set {
					target = cloneResults([]setResult{r})[0].set
				}
				out[e.i] = setResult{set: target, height: r.height + 1, expires: earliest(out[e.i].expires, r.expires),
					caveated: out[e.i].caveated || r.caveated, loose: loose}
				continue
			}
			set := combineTimed(out[e.i].set, target, andMember, 0)
			out[e.i] = setResult{set: set, height: max(out[e.i].height, r.height+1), expires: earliest(out[e.i].expires, r.expires),
				caveated: out[e.i].caveated || r.caveated, loose: loose}
		}
	}
	return nil
}

// expiresAt is r's expiration in UnixNano, 0 if it does not expire.
func expiresAt(r *graph.Relationship) int64 {
	if r.Expiration == nil {
		return 0
	}
	return r.Expiration.UnixNano()
}

// latest returns the later of two expirations (0: never).
func latest(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

// earliest returns the earlier of two expirations (0: never).
func earliest(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
