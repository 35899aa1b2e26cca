package slru

import (
	"fmt"
	"slices"
	"testing"
)

// keys lists the keys c holds, sorted.
func keys(c *Cache[string, int]) []string {
	out := append(c.probation.Keys(), c.protected.Keys()...)
	slices.Sort(out)
	return out
}

func TestCache(t *testing.T) {
	type op struct {
		add  string // key to add (size in size), or
		get  string // key to get
		size int64
	}
	tests := []struct {
		name string
		max  int64
		ops  []op
		want []string // keys held at the end
	}{
		{"within budget", 10, []op{{add: "a", size: 4}, {add: "b", size: 4}}, []string{"a", "b"}},
		{"least recently added goes first", 10, []op{{add: "a", size: 4}, {add: "b", size: 4}, {add: "c", size: 4}}, []string{"b", "c"}},
		{"used entry outlives a stream used once", 100, []op{
			{add: "hot", size: 40}, {get: "hot"},
			{add: "s1", size: 30}, {add: "s2", size: 30}, {add: "s3", size: 30}, {add: "s4", size: 30},
		}, []string{"hot", "s3", "s4"}},
		{"unused entry does not", 100, []op{
			{add: "cold", size: 40},
			{add: "s1", size: 30}, {add: "s2", size: 30}, {add: "s3", size: 30},
		}, []string{"s1", "s2", "s3"}},
		{"protected share bounded", 100, []op{
			{add: "a", size: 40}, {get: "a"}, {add: "b", size: 40}, {get: "b"},
			// b pushes a back on probation (a+b = 80 > 75); c then
			// evicts a, the oldest on probation.
			{add: "c", size: 30},
		}, []string{"b", "c"}},
		{"new entry evicts protected ones when alone on probation", 100, []op{
			{add: "a", size: 60}, {get: "a"}, {add: "b", size: 60},
		}, []string{"b"}},
		{"larger than the budget is not stored", 10, []op{{add: "a", size: 4}, {add: "big", size: 11}}, []string{"a"}},
		{"replacing keeps one entry", 10, []op{{add: "a", size: 4}, {get: "a"}, {add: "a", size: 8}, {add: "b", size: 2}}, []string{"a", "b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New[string, int](tc.max)
			for _, o := range tc.ops {
				if o.add != "" {
					c.Add(o.add, len(o.add), o.size)
				} else if _, ok := c.Get(o.get); !ok {
					t.Fatalf("Get(%q) found nothing", o.get)
				}
				if c.Size() > tc.max {
					t.Fatalf("after %+v: size %d over the budget %d", o, c.Size(), tc.max)
				}
			}
			if got := keys(c); !slices.Equal(got, tc.want) {
				t.Errorf("held %v, want %v", got, tc.want)
			}
			if c.Len() != len(tc.want) {
				t.Errorf("Len() = %d, want %d", c.Len(), len(tc.want))
			}
		})
	}
}

func TestPeekDoesNotPromote(t *testing.T) {
	c := New[string, int](100)
	c.Add("a", 1, 40)
	if v, ok := c.Peek("a"); !ok || v != 1 {
		t.Fatalf("Peek(a) = %d, %v; want 1, true", v, ok)
	}
	for i := range 3 {
		c.Add(fmt.Sprint("s", i), i, 30)
	}
	if _, ok := c.Peek("a"); ok {
		t.Error("a outlived a stream after a Peek only; Peek must not promote")
	}
}

func TestRemove(t *testing.T) {
	c := New[string, int](100)
	c.Add("a", 1, 40)
	c.Get("a")
	c.Add("b", 2, 20)
	c.Remove("a")
	c.Remove("b")
	c.Remove("missing")
	if c.Len() != 0 || c.Size() != 0 {
		t.Errorf("after removing everything: Len %d, Size %d; want 0, 0", c.Len(), c.Size())
	}
}

func TestAddUsedIsProtected(t *testing.T) {
	c := New[string, int](100)
	c.AddUsed("wanted", 1, 40)
	for i := range 10 {
		c.Add(fmt.Sprint("s", i), i, 30)
	}
	if _, ok := c.Peek("wanted"); !ok {
		t.Error("an entry added as used was evicted by entries used once")
	}
	if c.Size() > 100 {
		t.Errorf("size %d over the budget of 100", c.Size())
	}
}
