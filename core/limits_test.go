package core

import "testing"

func TestLimits(t *testing.T) {
	l := Limits{MaxBulkCheckItems: 2, AuditPageSize: 3}.WithDefaults()
	if l.MaxWriteRelationships != 1000 || l.LookupPageSize != 1000 || l.ImportBatchSize != 1000 || l.MaxBulkCheckItems != 2 {
		t.Fatalf("WithDefaults = %+v", l)
	}
	items := Field("items")
	for _, c := range []struct {
		n    int
		want string
	}{
		{0, "items: empty"},
		{1, ""},
		{2, ""},
		{3, "items: 3 items exceed the limit of 2 per request"},
	} {
		err := l.BulkCheckItems(c.n, items)
		if got := errText(err); got != c.want {
			t.Errorf("BulkCheckItems(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for requested, want := range map[int]int{-1: 1000, 0: 1000, 5: 5, 1000: 1000, 5000: 1000} {
		if got := l.LookupLimit(requested); got != want {
			t.Errorf("LookupLimit(%d) = %d, want %d", requested, got, want)
		}
	}
	for requested, want := range map[int]int{-1: 3, 0: 3, 2: 2, 3: 3, 4: 3} {
		if got := l.AuditLimit(requested); got != want {
			t.Errorf("AuditLimit(%d) = %d, want %d", requested, got, want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
