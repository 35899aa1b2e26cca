package storagetest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// testAgainstModel applies random writes and filtered deletes to the
// engine and to a map per revision, then compares every revision's
// snapshot with the model through exports and random filters, before and
// after garbage collection.
func testAgainstModel(t *testing.T, e storage.Engine) {
	rng := rand.New(rand.NewPCG(1, 2))
	steps := 60
	if raceEnabled || testing.Short() {
		steps = 25
	}
	docs := []string{"d1", "d2", "d3", "d4"}
	relations := []string{"viewer", "editor"}
	users := []string{"alice", "bob", "carol", "dave"}
	now := time.Now()
	randomRel := func() graph.Relationship {
		r := graph.Relationship{
			Resource: graph.ObjectRef{Type: "document", ID: docs[rng.IntN(len(docs))]},
			Relation: relations[rng.IntN(len(relations))],
			Subject:  graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: users[rng.IntN(len(users))]}},
		}
		if rng.IntN(4) == 0 {
			r.Subject = graph.SubjectRef{Object: graph.ObjectRef{Type: "group", ID: "eng"}, Relation: "member"}
		}
		switch rng.IntN(6) {
		case 0:
			r.Caveat = &graph.Caveat{Name: "cav", Context: map[string]any{"n": float64(rng.IntN(100))}}
		case 1:
			r.Expiration = ptr(now.Add(time.Hour).Truncate(time.Microsecond))
		case 2:
			r.Expiration = ptr(now.Add(-time.Hour).Truncate(time.Microsecond))
		}
		return r
	}
	type state map[graph.Key]graph.Relationship
	live := func(s state, k graph.Key) bool {
		r, ok := s[k]
		return ok && (r.Expiration == nil || r.Expiration.After(now))
	}
	models := map[storage.Revision]state{0: {}}
	cur := state{}
	var revs []storage.Revision
	for step := range steps {
		next := maps.Clone(cur)
		var rev storage.Revision
		var err error
		if rng.IntN(8) == 0 {
			f := storage.Filter{ResourceType: "document", ResourceIDs: []string{docs[rng.IntN(len(docs))]}}
			limit := rng.IntN(3)
			var res storage.DeleteResult
			res, err = e.DeleteRelationships(ctx, f, limit, storage.WriteMetadata{})
			rev = res.Revision
			// The model deletes the first `limit` live matches in forward order.
			var matches []graph.Relationship
			for k, r := range cur {
				if live(cur, k) && matchForward(f, r) {
					matches = append(matches, r)
				}
			}
			slices.SortFunc(matches, compareForward)
			if limit > 0 && len(matches) > limit {
				matches = matches[:limit]
			}
			for _, r := range matches {
				delete(next, r.Key())
			}
			if err == nil && res.Deleted != len(matches) {
				t.Fatalf("step %d: delete %s limit %d deleted %d, model %d", step, describe(f), limit, res.Deleted, len(matches))
			}
		} else {
			var muts []storage.Mutation
			seen := map[graph.Key]bool{}
			wantConflict := false
			for range 1 + rng.IntN(4) {
				r := randomRel()
				if seen[r.Key()] {
					continue
				}
				seen[r.Key()] = true
				op := []storage.Op{storage.OpCreate, storage.OpTouch, storage.OpTouch, storage.OpDelete}[rng.IntN(4)]
				muts = append(muts, storage.Mutation{Op: op, Relationship: r})
				switch op {
				case storage.OpCreate:
					if live(cur, r.Key()) {
						wantConflict = true
					}
					next[r.Key()] = r
				case storage.OpTouch:
					next[r.Key()] = r
				case storage.OpDelete:
					delete(next, r.Key())
				}
			}
			rev, err = e.Write(ctx, storage.WriteRequest{Mutations: muts})
			var exists *storage.AlreadyExistsError
			if wantConflict != errors.As(err, &exists) {
				t.Fatalf("step %d: write %v: error %v, conflict expected %v", step, muts, err, wantConflict)
			}
			if wantConflict {
				continue
			}
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		cur = next
		models[rev] = next
		revs = append(revs, rev)
	}
	compare := func(rev storage.Revision) {
		t.Helper()
		var want []graph.Relationship
		for k, r := range models[rev] {
			if live(models[rev], k) {
				want = append(want, r)
			}
		}
		rd := reader(t, e, rev)
		opts := storage.QueryOptions{Now: now}
		got := formatAll(collect(t, rd.QueryRelationships(ctx, storage.Filter{}, opts)))
		equalStrings(t, fmt.Sprintf("export at %d", rev), got, expect(want, func(graph.Relationship) bool { return true }, compareForward))
		for range 4 {
			f := storage.Filter{ResourceType: "document", ResourceIDs: []string{docs[rng.IntN(len(docs))]}, Relation: relations[rng.IntN(len(relations))]}
			got := formatAll(collect(t, rd.QueryRelationships(ctx, f, opts)))
			equalStrings(t, fmt.Sprintf("forward %s at %d", describe(f), rev), got,
				expect(want, func(r graph.Relationship) bool { return matchForward(f, r) }, compareForward))
			rf := storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{users[rng.IntN(len(users))]}}}
			got = formatAll(collect(t, rd.ReverseQueryRelationships(ctx, rf, opts)))
			equalStrings(t, fmt.Sprintf("reverse %s at %d", describe(rf), rev), got,
				expect(want, func(r graph.Relationship) bool { return matchReverse(rf, r) }, compareReverse))
		}
	}
	for _, rev := range revs {
		compare(rev)
	}
	// GC far in the future may drop relationships that expired before its
	// window; what it must keep is everything a read at that instant sees.
	now = farFuture()
	if err := e.CollectGarbage(ctx, now); err != nil {
		t.Fatal(err)
	}
	compare(revs[len(revs)-1])
}
