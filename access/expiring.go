package access

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/core"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// Bounds of one Expiring call.
const (
	// MaxWithin is the widest window an Expiring query may ask about.
	MaxWithin = 366 * 24 * time.Hour
	// MaxExpiringRelationships bounds the expiring relationships one call
	// collects; the soonest are kept.
	MaxExpiringRelationships = 10000
	// MaxExpiringRows bounds the access rows one call examines to find the
	// accesses that end in the window.
	MaxExpiringRows = 10000
	// MaxExpiringScan bounds the relationships one call reads from the
	// snapshot to find the expiring ones.
	MaxExpiringScan = 1000000
)

// ExpiringQuery asks which relationships expire in [Now, Now+Within) and
// which accesses end then because of them.
type ExpiringQuery struct {
	// Within is the window's length: required, positive, at most MaxWithin.
	Within time.Duration
	// ResourceType keeps relationships and accesses on resources of this
	// type ("" for all).
	ResourceType string
	// Subject keeps relationships and accesses of this subject; an empty
	// Relation matches the object with any relation or none.
	Subject *graph.SubjectRef
	// RelationshipsOnly leaves out the accesses.
	RelationshipsOnly bool
	// Limit caps the items returned; 0 means no limit.
	Limit int
	// After resumes after the item whose Position it is; the resumed call
	// judges the window from the same instant.
	After string
	// Now starts the window; zero means time.Now().
	Now time.Time
}

// ExpiringItem is one item of an answer: an expiring relationship or an
// access that ends in the window (its EndsAt is set).
type ExpiringItem struct {
	Relationship *graph.Relationship
	Access       *check.AccessRow
	// Position resumes the query after this item (ExpiringQuery.After).
	Position string
}

// ExpiringAnswer is the answer of an Expiring call.
type ExpiringAnswer struct {
	// Items are the relationships, soonest expiration first, then the
	// accesses, soonest end first.
	Items []ExpiringItem
	// Truncated, when not empty, says which bound cut the answer short
	// and how to narrow the question.
	Truncated string
}

// Expiring answers q at snap. The expiring relationships come from a
// scan of the snapshot (the reverse index for a subject, the forward
// index for a type), at most MaxExpiringScan relationships read. (The
// audit log's expiration-day index is no faster: deriving an expiration
// there decodes every later entry of its resource, which cost 15s where
// the scan took 12ms in BenchmarkExpiring.) The accesses are the rows of
// WhatCanAccess of each expiring relationship's subject (a subject set's
// own rows for a relationship naming one) whose end falls in the window,
// at most MaxExpiringRows rows examined. ResourceType narrows both
// lists, but the accesses are found from every expiring relationship of
// the subject: a document's access may end with a group membership.
func Expiring(ctx context.Context, src Source, snap check.Snapshot, q ExpiringQuery) (ExpiringAnswer, error) {
	now, after, err := validateExpiring(snap, q)
	if err != nil {
		return ExpiringAnswer{}, err
	}
	end := now.Add(q.Within)
	var ans ExpiringAnswer
	// An access on a resource of the type may end because a relationship
	// on another type expires (a group membership): the accesses come from
	// every expiring relationship of the subject.
	anyType := q
	anyType.ResourceType = ""
	if q.RelationshipsOnly {
		anyType = q
	}
	rels, note, err := expiringRelationships(ctx, src, snap, anyType, now, end)
	if err != nil {
		return ExpiringAnswer{}, err
	}
	ans.Truncated = note
	var items []ExpiringItem
	for i := range rels {
		r := &rels[i]
		if q.ResourceType == "" || r.Resource.Type == q.ResourceType {
			items = append(items, ExpiringItem{Relationship: r, Position: relationshipPosition(*r)})
		}
	}
	if !q.RelationshipsOnly {
		rows, note, err := endingAccesses(ctx, src, snap, q, rels, now, end)
		if err != nil {
			return ExpiringAnswer{}, err
		}
		if ans.Truncated == "" {
			ans.Truncated = note
		}
		for i := range rows {
			items = append(items, ExpiringItem{Access: &rows[i], Position: accessPosition(rows[i])})
		}
	}
	stamp := strconv.FormatInt(now.UnixNano(), 10) + " "
	for i := range items {
		if after != "" && items[i].Position <= after {
			continue
		}
		items[i].Position = stamp + items[i].Position
		ans.Items = append(ans.Items, items[i])
		if q.Limit > 0 && len(ans.Items) == q.Limit {
			break
		}
	}
	return ans, nil
}

// validateExpiring checks q against snap's schema and returns the
// window's start and the position to resume after.
func validateExpiring(snap check.Snapshot, q ExpiringQuery) (time.Time, string, error) {
	switch {
	case q.Within <= 0:
		return time.Time{}, "", core.Invalid(core.Field("within"), errors.New("required: a positive duration"))
	case q.Within > MaxWithin:
		return time.Time{}, "", core.Invalid(core.Field("within"), fmt.Errorf("%v exceeds the limit of %d days", q.Within, MaxWithin/(24*time.Hour)))
	}
	if q.ResourceType != "" && snap.Schema.Definition(q.ResourceType) == nil {
		return time.Time{}, "", core.Invalid(core.Field("resource_type"), fmt.Errorf("type %q is not defined in the schema", q.ResourceType))
	}
	if s := q.Subject; s != nil {
		def := snap.Schema.Definition(s.Object.Type)
		if def == nil {
			return time.Time{}, "", core.Invalid(core.Path{"subject", "type"}, fmt.Errorf("type %q is not defined in the schema", s.Object.Type))
		}
		if s.Relation != "" && !def.Has(s.Relation) {
			return time.Time{}, "", core.Invalid(core.Path{"subject", "relation"}, fmt.Errorf("definition %q has no relation or permission %q", def.Name, s.Relation))
		}
	}
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	if q.After == "" {
		return now, "", nil
	}
	stamp, pos, ok := strings.Cut(q.After, " ")
	nanos, err := strconv.ParseInt(stamp, 10, 64)
	if !ok || err != nil {
		return time.Time{}, "", core.Invalid(core.Field("cursor"), core.ErrMalformedCursor)
	}
	return time.Unix(0, nanos), pos, nil
}

// relationshipPosition orders relationships by expiration, then key,
// before every access.
func relationshipPosition(r graph.Relationship) string {
	return "0 " + instant(*r.Expiration) + " " + r.Key().String()
}

// accessPosition orders accesses by end, then resource, permission and
// subject.
func accessPosition(a check.AccessRow) string {
	return "1 " + instant(a.EndsAt) + " " + a.Resource.String() + "#" + a.Permission + "@" + a.Subject.String()
}

// instant formats t so that text order is time order.
func instant(t time.Time) string { return fmt.Sprintf("%020d", t.UnixNano()) }

// subjectMatches reports whether s is the query's subject.
func subjectMatches(want *graph.SubjectRef, s graph.SubjectRef) bool {
	return want == nil || s.Object == want.Object && (want.Relation == "" || s.Relation == want.Relation)
}

// expiringRelationships lists the relationships live at snap whose
// expiration falls in [now, end), soonest first.
func expiringRelationships(ctx context.Context, src Source, snap check.Snapshot, q ExpiringQuery, now, end time.Time) ([]graph.Relationship, string, error) {
	rels, note, err := expiringFromScan(ctx, src, snap, q, now, end)
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(rels, func(a, b graph.Relationship) int {
		return cmp.Or(a.Expiration.Compare(*b.Expiration), strings.Compare(a.Key().String(), b.Key().String()))
	})
	return rels, note, nil
}

// expiringFromScan reads the relationships the query selects at snap,
// at most src.scanLimit(), and keeps those expiring in the window.
func expiringFromScan(ctx context.Context, src Source, snap check.Snapshot, q ExpiringQuery, now, end time.Time) ([]graph.Relationship, string, error) {
	opts := storage.QueryOptions{Now: now}
	seq := snap.Reader.QueryRelationships(ctx, storage.Filter{ResourceType: q.ResourceType}, opts)
	if s := q.Subject; s != nil {
		sf := storage.SubjectFilter{Type: s.Object.Type, IDs: []string{s.Object.ID}}
		if s.Relation != "" {
			sf.Relation = &s.Relation
		}
		seq = snap.Reader.ReverseQueryRelationships(ctx, storage.ReverseFilter{Subject: sf, ResourceType: q.ResourceType}, opts)
	}
	soonest := &soonestHeap{max: src.relationshipLimit()}
	read, note := 0, ""
	for r, err := range seq {
		if err != nil {
			return nil, "", fmt.Errorf("scan for expiring relationships: %w", err)
		}
		if read++; read > src.scanLimit() {
			note = fmt.Sprintf("stopped after reading %d relationships, the limit of one scan: narrow with resource_type or subject", src.scanLimit())
			break
		}
		if r.Expiration == nil || r.Expiration.Before(now) || !r.Expiration.Before(end) {
			continue
		}
		if soonest.add(r) && note == "" {
			note = fmt.Sprintf("kept the %d soonest expiring relationships, the limit per call: narrow with resource_type or subject", soonest.max)
		}
	}
	return soonest.rels, note, nil
}

// soonestHeap keeps the max relationships that expire first: a max-heap
// by (expiration, key), so the latest is at the root and replaced first.
type soonestHeap struct {
	max  int
	rels []graph.Relationship
}

func later(a, b graph.Relationship) bool {
	return cmp.Or(a.Expiration.Compare(*b.Expiration), strings.Compare(a.Key().String(), b.Key().String())) > 0
}

// add keeps r if it is among the max soonest; dropped reports whether a
// relationship (r or another) was left out.
func (h *soonestHeap) add(r graph.Relationship) (dropped bool) {
	if len(h.rels) < h.max {
		h.rels = append(h.rels, r)
		heap.Push(h, nil)
		return false
	}
	if !later(h.rels[0], r) {
		return true
	}
	h.rels[0] = r
	heap.Fix(h, 0)
	return true
}

// The heap.Interface of soonestHeap; add appends before Push, so Push
// and Pop only adjust the length heap sees.
func (h *soonestHeap) Len() int           { return len(h.rels) }
func (h *soonestHeap) Less(i, j int) bool { return later(h.rels[i], h.rels[j]) }
func (h *soonestHeap) Swap(i, j int)      { h.rels[i], h.rels[j] = h.rels[j], h.rels[i] }
func (h *soonestHeap) Push(any)           {}
func (h *soonestHeap) Pop() any           { h.rels = h.rels[:len(h.rels)-1]; return nil }

// endingAccesses finds the accesses that end in [now, end): the rows of
// WhatCanAccess of each expiring relationship's subject whose end falls
// in the window, soonest first.
func endingAccesses(ctx context.Context, src Source, snap check.Snapshot, q ExpiringQuery, rels []graph.Relationship, now, end time.Time) ([]check.AccessRow, string, error) {
	subjects := map[string]graph.SubjectRef{}
	for _, r := range rels {
		subjects[r.Subject.String()] = r.Subject
	}
	keys := make([]string, 0, len(subjects))
	for k := range subjects {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var types []string
	if q.ResourceType != "" {
		types = []string{q.ResourceType}
	}
	var out []check.AccessRow
	seen := map[string]bool{}
	examined, note := 0, ""
	for _, k := range keys {
		if note != "" {
			break
		}
		req := check.WhatRequest{Subject: subjects[k], ResourceTypes: types, Now: now}
		err := src.Checker.WhatCanAccess(ctx, snap, req, func(row check.AccessRow) bool {
			if examined++; examined > MaxExpiringRows {
				note = fmt.Sprintf("stopped after examining %d accesses, the limit per call: narrow with resource_type or subject", MaxExpiringRows)
				return false
			}
			if row.EndsAt.IsZero() || !row.EndsAt.Before(end) {
				return true
			}
			if pos := accessPosition(row); !seen[pos] {
				seen[pos] = true
				out = append(out, row)
			}
			return true
		})
		if errors.Is(err, check.ErrInvalidRequest) {
			// A subject the engine cannot ask about (a wildcard, say)
			// has no accesses of its own to list.
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("accesses of %s: %w", k, err)
		}
	}
	slices.SortFunc(out, func(a, b check.AccessRow) int { return strings.Compare(accessPosition(a), accessPosition(b)) })
	return out, note, nil
}
