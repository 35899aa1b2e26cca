package check

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
)

// TestSubjectIDs: a table numbers each ID once, names its numbers, looks
// up without numbering, and refuses to number past its limit.
func TestSubjectIDs(t *testing.T) {
	ids := newSubjectIDs(3)
	nums := make([]subjectID, 3)
	if !ids.internAll([]string{"alice", "bob", "alice"}, nums) {
		t.Fatal("could not number two IDs in a table of three")
	}
	if nums[0] != nums[2] || nums[0] == nums[1] {
		t.Fatalf("numbers %v: want alice's twice and bob's apart", nums)
	}
	for i, want := range []string{"alice", "bob", "alice"} {
		if got := ids.name(nums[i]); got != want {
			t.Errorf("name(%d) = %q, want %q", nums[i], got, want)
		}
	}
	looked := make([]subjectID, 2)
	ids.numbersOf([]string{"bob", "carol"}, looked)
	if looked[0] != nums[1] || looked[1] != unnumbered {
		t.Errorf("numbersOf(bob, carol) = %v; want bob's number and carol unnumbered", looked)
	}
	if got := ids.numberOf("carol"); got != unnumbered {
		t.Errorf("numberOf(carol) = %d, want unnumbered", got)
	}
	if ids.size() != 2 {
		t.Errorf("size %d after looking carol up, want 2", ids.size())
	}
	if ids.internAll([]string{"carol", "dave"}, make([]subjectID, 2)) {
		t.Error("numbered four IDs in a table of three")
	}
}

// TestSubjectIDTableReplaced: an engine starts a fresh table of subject
// IDs once its table is three quarters full, and the sets cached with the
// old one are no longer served.
func TestSubjectIDTableReplaced(t *testing.T) {
	e := New(Config{})
	small := newSubjectIDs(8)
	e.subjectIDs.Store(small)
	if e.subjectIDTable() != small {
		t.Fatal("an empty table was replaced")
	}
	if !small.internAll([]string{"a", "b", "c", "d", "e", "f"}, make([]subjectID, 6)) {
		t.Fatal("could not number six IDs in a table of eight")
	}
	fresh := e.subjectIDTable()
	if fresh == small || fresh.size() != 0 || e.subjectIDTable() != fresh {
		t.Fatalf("a table three quarters full was not replaced by one fresh table")
	}
	k := setKey{rev: 1, subjectType: "user", n: node{typ: "group", id: "g", rel: "member"}}
	e.sets.put(k, setResult{set: emptySet()}, 0, 1, small, nil, putOnTheWay)
	if _, ok := e.sets.get(k, 0, 1, fresh); ok {
		t.Error("a set numbered by the old table was served with the fresh one")
	}
}

// TestSubjectIDsExhausted: a lookup whose subjects do not fit the table
// of subject IDs falls back to the walk and checks, with the same answer.
func TestSubjectIDsExhausted(t *testing.T) {
	s, err := schema.Compile("exhausted.zed", `definition user {}
definition group {
  relation member: user
}
definition doc {
  relation viewer: user | group#member
  relation blocked: user
  permission view = viewer - blocked
}`)
	if err != nil {
		t.Fatal(err)
	}
	var rels []string
	var want []string
	for i := range 12 {
		u := fmt.Sprintf("u%02d", i)
		rels = append(rels, "group:g#member@user:"+u)
		if i != 5 {
			want = append(want, u)
		}
	}
	rels = append(rels, "doc:d#viewer@group:g#member", "doc:d#blocked@user:u05")
	snap := storeOf(t, s, rels...)
	req := LookupSubjectsRequest{Resource: graph.ObjectRef{Type: "doc", ID: "d"}, Permission: "view", SubjectType: "user", Now: goldenNow}
	for _, limit := range []int{maxSubjectIDs, 8} {
		e := New(Config{})
		e.subjectIDs.Store(newSubjectIDs(limit))
		var got []string
		if err := e.LookupSubjects(context.Background(), snap, req, func(r SubjectResult) bool {
			got = append(got, r.Subject.Object.ID)
			return true
		}); err != nil {
			t.Fatalf("table of %d: %v", limit, err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("table of %d: doc:d#view holders %v, want %v", limit, got, want)
		}
		if n := e.subjectIDs.Load().size(); limit == 8 && n != 8 {
			t.Errorf("table of 8 holds %d IDs: the evaluation did not fill it and fall back", n)
		}
	}
}
