package graph

import (
	"cmp"
	"strings"
	"time"
)

// Key is a relationship's identity: (resource, relation, subject). Two
// relationships with the same Key are the same relationship, whatever their
// caveat and expiration; a write replaces one with the other. Key is
// comparable, so it can be a map key.
type Key struct {
	Resource ObjectRef
	Relation string
	Subject  SubjectRef
}

// Key returns the relationship's identity.
func (r Relationship) Key() Key {
	return Key{Resource: r.Resource, Relation: r.Relation, Subject: r.Subject}
}

// String returns `resource#relation@subject`.
func (k Key) String() string {
	var b strings.Builder
	k.write(&b)
	return b.String()
}

func (k Key) write(b *strings.Builder) {
	b.WriteString(k.Resource.Type)
	b.WriteByte(':')
	b.WriteString(k.Resource.ID)
	b.WriteByte('#')
	b.WriteString(k.Relation)
	b.WriteByte('@')
	b.WriteString(k.Subject.Object.Type)
	b.WriteByte(':')
	b.WriteString(k.Subject.Object.ID)
	if k.Subject.Relation != "" {
		b.WriteByte('#')
		b.WriteString(k.Subject.Relation)
	}
}

// CompareForward orders keys as storage's forward queries return them:
// resource type, resource id, relation, subject type, subject id, subject
// relation, each compared bytewise. The ellipsis (empty subject relation)
// sorts before every named relation. It returns -1, 0 or +1.
func (k Key) CompareForward(o Key) int {
	if c := cmp.Compare(k.Resource.Type, o.Resource.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Resource.ID, o.Resource.ID); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Relation, o.Relation); c != 0 {
		return c
	}
	return k.Subject.Compare(o.Subject)
}

// CompareReverse orders keys as storage's reverse queries return them:
// subject type, subject id, subject relation, resource type, resource id,
// relation. It returns -1, 0 or +1.
func (k Key) CompareReverse(o Key) int {
	if c := k.Subject.Compare(o.Subject); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Resource.Type, o.Resource.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Resource.ID, o.Resource.ID); c != 0 {
		return c
	}
	return cmp.Compare(k.Relation, o.Relation)
}

// Compare orders subjects by type, id, then relation (ellipsis first).
func (s SubjectRef) Compare(o SubjectRef) int {
	if c := cmp.Compare(s.Object.Type, o.Object.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(s.Object.ID, o.Object.ID); c != 0 {
		return c
	}
	return cmp.Compare(s.Relation, o.Relation)
}

// CompareForward orders relationships by Key.CompareForward, for
// slices.SortFunc. Caveat and expiration do not take part.
func CompareForward(a, b Relationship) int { return a.Key().CompareForward(b.Key()) }

// CompareReverse orders relationships by Key.CompareReverse, for
// slices.SortFunc. Caveat and expiration do not take part.
func CompareReverse(a, b Relationship) int { return a.Key().CompareReverse(b.Key()) }

// ExpiredAt reports whether the relationship has expired at now: it has an
// expiration and the expiration is at or before now.
func (r Relationship) ExpiredAt(now time.Time) bool {
	return r.Expiration != nil && !r.Expiration.After(now)
}

// Equal reports whether r and o are the same relationship with the same
// caveat (name and context) and the same expiration instant.
func (r Relationship) Equal(o Relationship) bool {
	if r.Key() != o.Key() {
		return false
	}
	switch {
	case (r.Expiration == nil) != (o.Expiration == nil):
		return false
	case r.Expiration != nil && !r.Expiration.Equal(*o.Expiration):
		return false
	case (r.Caveat == nil) != (o.Caveat == nil):
		return false
	case r.Caveat == nil:
		return true
	}
	return r.Caveat.Name == o.Caveat.Name && equalContext(r.Caveat.Context, o.Caveat.Context)
}
