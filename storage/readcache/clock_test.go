package readcache

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/pembadb/pemba/storage"
)

// TestClockShard: a shard keeps its byte budget, evicts unreferenced
// entries before referenced ones, never serves one key's entry for another
// with the same hash, keeps the newer of two revisions, and reuses the
// slots it empties.
func TestClockShard(t *testing.T) {
	if n := unsafe.Sizeof(slot{}) + unsafe.Sizeof(uint32(0)); n > 84 {
		t.Errorf("a slot and its state take %d bytes; entryOverhead counts 84", n)
	}
	var sh cacheShard
	sh.init(1000, 0)
	put := func(key string, h uint64, rev int) {
		sh.put(key, h, entry{rev: storage.Revision(rev), size: 100})
	}
	for i := range 10 {
		put(fmt.Sprint("k", i), uint64(i), 1)
	}
	if n, b := sh.stats(); n != 10 || b != 1000 {
		t.Fatalf("after 10 puts: %d entries, %d bytes; want 10, 1000", n, b)
	}
	// Read k0–k4: the next puts evict k5–k9 first, in slot order.
	for i := range 5 {
		if _, ok := sh.get(fmt.Sprint("k", i), uint64(i)); !ok {
			t.Fatalf("k%d missing", i)
		}
	}
	for i := 10; i < 15; i++ {
		put(fmt.Sprint("k", i), uint64(i), 1)
	}
	for i := range 15 {
		_, ok := sh.get(fmt.Sprint("k", i), uint64(i))
		if want := i < 5 || i >= 10; ok != want {
			t.Errorf("k%d held: %v, want %v", i, ok, want)
		}
	}
	if n, b := sh.stats(); n != 10 || b != 1000 {
		t.Fatalf("after 15 puts: %d entries, %d bytes; want 10, 1000", n, b)
	}
	if len(sh.slots) != 10 {
		t.Errorf("%d slots for 10 entries: emptied slots were not reused", len(sh.slots))
	}
	// Another key with k0's hash replaces it and is not served for it.
	put("other", 0, 1)
	if _, ok := sh.get("k0", 0); ok {
		t.Error("k0 served after another key with its hash replaced it")
	}
	if _, ok := sh.get("other", 0); !ok {
		t.Error("the key that replaced k0 is missing")
	}
	// An older revision does not replace a newer one.
	put("other", 0, 5)
	put("other", 0, 3)
	if e, ok := sh.get("other", 0); !ok || e.rev != 5 {
		t.Errorf("after revisions 5 and 3: %+v, %v; want revision 5", e, ok)
	}
	if n, b := sh.stats(); n != 10 || b != 1000 {
		t.Fatalf("after replacements: %d entries, %d bytes; want 10, 1000", n, b)
	}
	// Everything referenced: a sweep unmarks all and then evicts.
	for i := 20; i < 40; i++ {
		for j := range sh.refs {
			if sh.refs[j] == slotCold {
				sh.refs[j] = slotReferenced
			}
		}
		put(fmt.Sprint("k", i), uint64(i), 1)
		if _, b := sh.stats(); b > 1000 {
			t.Fatalf("%d bytes held, budget 1000", b)
		}
	}
}
