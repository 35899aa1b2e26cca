package auditlog

import (
	"slices"
	"time"

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
func Terms(e *storage.AuditEntry) []string {
	terms := make([]string, 0, 2+len(e.Metadata.Labels)+2*len(e.Changes))
	if e.Metadata.Actor != "" {
		terms = append(terms, ActorTerm(e.Metadata.Actor))
	}
	for _, l := range e.Metadata.Labels {
		terms = append(terms, LabelTerm(l.Key, l.Value))
	}
	if e.Kind == storage.AuditSchema || e.Kind == storage.AuditDelete {
		terms = append(terms, KindTerm(e.Kind))
	}
	// Consecutive changes usually share types (and often objects): skip
	// repeats cheaply before the final sort.
	var lastRes, lastSubj, lastResType, lastSubjType string
	for i := range e.Changes {
		r := &e.Changes[i].Relationship
		if t := r.Resource.Type; t != lastResType {
			terms = append(terms, ResourceTypeTerm(t))
			lastResType = t
		}
		if t := r.Subject.Object.Type; t != lastSubjType {
			terms = append(terms, SubjectTypeTerm(t))
			lastSubjType = t
		}
		if t := ResourceTerm(r.Resource.Type, r.Resource.ID); t != lastRes {
			terms = append(terms, t)
			lastRes = t
		}
		if t := SubjectTerm(r.Subject.Object.Type, r.Subject.Object.ID); t != lastSubj {
			terms = append(terms, t)
			lastSubj = t
		}
		if r.Expiration != nil && e.Changes[i].Op != storage.OpDelete {
			terms = append(terms, ExpiryDayTerm(*r.Expiration))
		}
	}
	slices.Sort(terms)
	return slices.Compact(terms)
}
