package auditlog

import (
	"slices"
	"strings"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Index terms. Each is a kind letter and '|'-separated parts; the last
// part may contain anything, the others are type names, label keys or
// fixed words, which cannot contain '|'. Terms are valid UTF-8 when the
// strings in them are, and never contain NUL (SQL text columns refuse it).
const sep = "|"

// ResourceTerm indexes the entries that changed a relationship of the
// resource typ:id.
func ResourceTerm(typ, id string) string { return "r" + sep + typ + sep + id }

// ResourceTypeTerm indexes the entries that changed a relationship of a
// resource of type typ.
func ResourceTypeTerm(typ string) string { return "t" + sep + typ }

// SubjectTerm indexes the entries that changed a relationship whose
// subject is the object typ:id (with any subject relation).
func SubjectTerm(typ, id string) string { return "s" + sep + typ + sep + id }

// SubjectTypeTerm indexes the entries that changed a relationship whose
// subject is of type typ.
func SubjectTypeTerm(typ string) string { return "u" + sep + typ }

// ActorTerm indexes the entries written by actor.
func ActorTerm(actor string) string { return "a" + sep + actor }

// LabelTerm indexes the entries written with the label key=value.
func LabelTerm(key, value string) string { return "l" + sep + key + sep + value }

// KindTerm indexes the entries of one kind (only schema writes and
// deletes are indexed by kind; writes and imports are most of the log).
func KindTerm(k storage.AuditKind) string { return "k" + sep + k.String() }

// ExpiryDayTerm indexes the entries that created or touched a
// relationship expiring on t's day (UTC): how expirations in a time range
// are found without a scan of the whole log.
func ExpiryDayTerm(t time.Time) string { return "e" + sep + t.UTC().Format(time.DateOnly) }

// Terms returns the index terms of e, each once, sorted.
func Terms(e *storage.AuditEntry) []string { return entryTerms(e).sorted() }

// entryTerms collects the terms (and filter keys) of e.
func entryTerms(e *storage.AuditEntry) *termSet {
	s := new(termSet)
	s.meta(e.Kind, e.Metadata.Actor, e.Metadata.Labels)
	s.schema(e.Schema)
	for i := range e.Changes {
		s.change(e.Changes[i].Op, &e.Changes[i].Relationship)
	}
	return s
}

// Filter returns the Bloom filter of an import entry's object terms, to
// be stored beside it (storage.AuditLog.AuditFilter); nil for other
// entries, which are indexed under their object terms instead.
func Filter(e *storage.AuditEntry) []byte { return entryTerms(e).filter() }

// termSet collects an entry's index terms back to back in one buffer,
// each as the term constructors above spell it. Consecutive changes
// usually share types and often objects, so a term equal to the previous
// one of its kind is skipped at once; sorted removes the other repeats.
type termSet struct {
	buf  []byte
	ends []int // the end of each term in buf
	// compact is set for an import entry: its object terms go to
	// objects (for its filter) instead of the index.
	compact bool
	objects []uint64 // keyHash of each object term of a compact entry
	names   []string // the same terms spelled out, once filtered() is known false
	types   []string // the import-type terms of a compact entry
	// The previous change's resource and subject, and whether there was one.
	prev           bool
	resType, resID string
	subType, subID string
}

func (s *termSet) reset() {
	*s = termSet{buf: s.buf[:0], ends: s.ends[:0], objects: s.objects[:0], names: s.names[:0], types: s.types[:0]}
}

// add appends the term kind|parts[0]|parts[1]...
func (s *termSet) add(kind byte, parts ...string) {
	s.buf = append(s.buf, kind)
	for _, p := range parts {
		s.buf = append(append(s.buf, sep...), p...)
	}
	s.ends = append(s.ends, len(s.buf))
}

func (s *termSet) meta(kind storage.AuditKind, actor string, labels []storage.Label) {
	s.compact = kind == storage.AuditImport
	if actor != "" {
		s.add('a', actor)
	}
	for _, l := range labels {
		s.add('l', l.Key, l.Value)
	}
	if kind == storage.AuditSchema || kind == storage.AuditDelete {
		s.add('k', kind.String())
	}
}

// schema indexes a schema write under the resource type of every
// definition, relation and permission it changed, so a query for one
// resource type finds the schema changes to that type too.
func (s *termSet) schema(changes []storage.SchemaChange) {
	for _, c := range changes {
		if c.Kind == "definition" || c.Kind == "relation" || c.Kind == "permission" {
			def, _, _ := strings.Cut(c.Name, "#")
			s.add('t', def)
		}
	}
}

func (s *termSet) change(op storage.Op, r *graph.Relationship) {
	res, sub := &r.Resource, &r.Subject.Object
	if !s.prev || res.Type != s.resType {
		s.add('t', res.Type)
		if s.compact {
			s.types = append(s.types, ImportResourceTypeTerm(res.Type))
		}
	}
	if !s.prev || sub.Type != s.subType {
		s.add('u', sub.Type)
		if s.compact {
			s.types = append(s.types, ImportSubjectTypeTerm(sub.Type))
		}
	}
	if !s.prev || res.Type != s.resType || res.ID != s.resID {
		s.object('r', res.Type, res.ID)
	}
	if !s.prev || sub.Type != s.subType || sub.ID != s.subID {
		s.object('s', sub.Type, sub.ID)
	}
	s.prev, s.resType, s.resID, s.subType, s.subID = true, res.Type, res.ID, sub.Type, sub.ID
	if r.Expiration != nil && op != storage.OpDelete {
		s.buf = append(s.buf, 'e')
		s.buf = r.Expiration.UTC().AppendFormat(append(s.buf, sep...), time.DateOnly)
		s.ends = append(s.ends, len(s.buf))
	}
}

// object indexes an object term, or keeps it for the filter of a compact
// entry.
func (s *termSet) object(kind byte, typ, id string) {
	if s.compact {
		s.objects = append(s.objects, keyHash(string(kind), sep, typ, sep, id))
		// Spelled out only while the entry is too small for a filter.
		if len(s.objects) <= minFilteredObjects {
			s.names = append(s.names, string(kind)+sep+typ+sep+id)
		}
		return
	}
	s.add(kind, typ, id)
}

// minFilteredObjects is the fewest object terms an import entry needs to
// be indexed through a filter: below it, reading the filter would cost a
// query more than the few term keys cost the import, and the entry is
// indexed like any other.
const minFilteredObjects = 64

// filtered reports whether the entry's objects go to a filter.
func (s *termSet) filtered() bool { return s.compact && len(s.objects) >= minFilteredObjects }

// filter returns the Bloom filter of a filtered entry's object terms (nil
// for other entries).
func (s *termSet) filter() []byte {
	if !s.filtered() {
		return nil
	}
	return buildFilter(s.objects)
}

// sorted returns the terms, each once, sorted. They share one string.
func (s *termSet) sorted() []string {
	all := string(s.buf)
	terms := make([]string, len(s.ends), len(s.ends)+len(s.names)+len(s.types))
	start := 0
	for i, end := range s.ends {
		terms[i] = all[start:end]
		start = end
	}
	if s.filtered() {
		terms = append(terms, s.types...)
	} else {
		terms = append(terms, s.names...)
	}
	slices.Sort(terms)
	return slices.Compact(terms)
}
