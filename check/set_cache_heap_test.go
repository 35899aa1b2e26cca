package check

import (
	"fmt"
	"runtime"
	"testing"
)

// TestSetCacheBytesHoldTheHeap: the set cache's estimate of its bytes
// covers the heap its entries hold, small sets included, whose fixed
// cost (the entry, its key and the set's own struct) outweighs their
// members.
func TestSetCacheBytesHoldTheHeap(t *testing.T) {
	for _, members := range []int{0, 1, 8, 64, 1000} {
		t.Run(fmt.Sprint(members, " members"), func(t *testing.T) {
			sets := int64(20000)
			if members >= 1000 {
				sets = 2000 // as many bytes as the others, not ten times
			}
			ids := newSubjectIDs(maxSubjectIDs)
			keys := make([]setKey, sets)
			for i := range keys {
				keys[i] = setKey{rev: 1, subjectType: "user", n: node{typ: "team", id: fmt.Sprintf("team-%06d", i), rel: "membership"}}
			}
			heap := func() uint64 {
				runtime.GC()
				runtime.GC()
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				return m.HeapAlloc
			}
			before := heap()
			c := &setCache{maxBytes: 1 << 30}
			for i, k := range keys {
				s := emptySet()
				for j := range members {
					s.set(subjectID(i*members+j), memberYes)
				}
				s.place(0) // a lookup indexes the set, as the cache's users do
				c.put(k, setResult{set: s}, 0, 1, ids, [][2]string{{"team", "member"}}, putWanted)
			}
			held := int64(heap() - before)
			est := c.sets.Size()
			runtime.KeepAlive(c)
			t.Logf("%d sets of %d members: estimated %d bytes (%d a set), heap %d (%d a set)", sets, members, est, est/sets, held, held/sets)
			if held > est*5/4 || held < est/2 {
				t.Errorf("%d sets of %d members hold %d bytes of heap, estimated at %d", sets, members, held, est)
			}
		})
	}
}
