package readcache

import (
	"testing"

	"github.com/pembadb/pemba/storage"
)

// TestAbsentTable covers the table of empty results: a key is found by
// both its hashes only, a newer revision is kept, a full set evicts an
// unreferenced slot first, and the budget bounds the slots.
func TestAbsentTable(t *testing.T) {
	if newAbsentTable(absentWays*absentSlotBytes-1) != nil {
		t.Fatal("a budget below one set made a table")
	}
	tab := newAbsentTable(2 * absentWays * absentSlotBytes)
	if len(tab.slots) != 2*absentWays {
		t.Fatalf("%d slots for two sets' budget, want %d", len(tab.slots), 2*absentWays)
	}
	// Hashes 1<<32 and 3<<32 pick set 1 of 2.
	const h = 1 << 32
	tab.put(h, 7, 5, 100)
	if rev, at, ok := tab.get(h, 7); !ok || rev != 5 || at != 100 {
		t.Fatalf("get = %d, %d, %v; want revision 5 read at 100", rev, at, ok)
	}
	if _, _, ok := tab.get(h, 8); ok {
		t.Fatal("a key with the same first hash and another second hash was found")
	}
	if _, _, ok := tab.get(h+2, 7); ok {
		t.Fatal("a key with another first hash in the same set was found")
	}
	tab.put(h, 7, 4, 200) // older: ignored
	tab.put(h, 7, 6, 300)
	if rev, at, _ := tab.get(h, 7); rev != 6 || at != 300 || tab.entries != 1 {
		t.Fatalf("after an older and a newer put: revision %d at %d, %d entries; want 6 at 300, 1 entry", rev, at, tab.entries)
	}
	// Fill the set: keys (h, 7), (h, 10), (h, 11), (h, 12). A hit marks
	// (h, 7) and (h, 11) referenced; the next key evicts a cold one.
	for c := uint64(10); c < 13; c++ {
		tab.put(h, c, 1, 1)
	}
	tab.get(h, 7)
	tab.get(h, 11)
	tab.put(3*h, 13, 1, 1)
	if tab.entries != absentWays {
		t.Fatalf("%d entries in a full set, want %d", tab.entries, absentWays)
	}
	for _, c := range []uint64{7, 11} {
		if _, _, ok := tab.get(h, c); !ok {
			t.Errorf("referenced key (h, %d) was evicted", c)
		}
	}
	if _, _, ok := tab.get(3*h, 13); !ok {
		t.Error("the new key is missing")
	}
	// Set 0 is untouched.
	for i := range absentWays {
		if tab.refs[i] != slotEmpty {
			t.Fatalf("slot %d of set 0 is used", i)
		}
	}
	// Every key in the set referenced: a new one still finds a slot.
	for c := uint64(20); c < 40; c++ {
		tab.put(h, c, storage.Revision(c), 1)
		for i := absentWays; i < 2*absentWays; i++ {
			tab.refs[i] = slotReferenced
		}
	}
	if _, _, ok := tab.get(h, 39); !ok || tab.entries != absentWays {
		t.Fatalf("after puts into a referenced set: newest found %v, %d entries", ok, tab.entries)
	}
}
