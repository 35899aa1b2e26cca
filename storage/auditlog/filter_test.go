package auditlog

import (
	"fmt"
	"testing"
)

func TestFilterHasNoFalseNegatives(t *testing.T) {
	var keys []string
	for i := range 5000 {
		keys = append(keys, ResourceTerm("document", fmt.Sprintf("doc-%d", i)))
	}
	hashes := make([]uint64, len(keys))
	for i, k := range keys {
		hashes[i] = keyHash(k)
	}
	f := buildFilter(hashes)
	for _, k := range keys {
		if !FilterMayContain(f, k) {
			t.Fatalf("the filter lost %s", k)
		}
	}
	// About 1% false positives at 10 bits per key; allow 3%.
	fp := 0
	for i := range 10000 {
		if FilterMayContain(f, ResourceTerm("document", fmt.Sprintf("other-%d", i))) {
			fp++
		}
	}
	if fp > 300 {
		t.Fatalf("%d false positives in 10000, want about 100", fp)
	}
}

func TestImportTermFor(t *testing.T) {
	for _, tc := range []struct{ term, want string }{
		{ResourceTerm("document", "a|b"), ImportResourceTypeTerm("document")},
		{SubjectTerm("user", "alice"), ImportSubjectTypeTerm("user")},
		{ResourceTypeTerm("document"), ""},
		{ActorTerm("ci"), ""},
		{"", ""},
	} {
		got, ok := ImportTermFor(tc.term)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("ImportTermFor(%q) = %q, %v; want %q", tc.term, got, ok, tc.want)
		}
	}
}

func TestUnreadableFilterMatchesEverything(t *testing.T) {
	for _, f := range [][]byte{nil, {}, {0, 1}, {99, 0}} {
		if !FilterMayContain(f, "r|document|x") {
			t.Errorf("filter %v rules a key out", f)
		}
	}
}
