package abtest

import (
	"slices"
	"testing"
)

func TestRoundAlternates(t *testing.T) {
	var order []string
	for i := range 4 {
		Round(i, "a", "b", func(s string) { order = append(order, s) })
	}
	if want := []string{"a", "b", "b", "a", "a", "b", "b", "a"}; !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}
