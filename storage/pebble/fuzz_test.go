package pebble

import (
	"bytes"
	"cmp"
	"testing"

	"github.com/pembadb/pemba/storage"
)

// FuzzDecode feeds arbitrary bytes to every decoder of stored keys and
// values: a corrupt store must produce errors, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{flagCaveat | flagExpiration, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 'a', 'b', 'c', '{', '}'})
	f.Add([]byte("fdocument\x00\x01readme\x00\x01viewer\x00\x01user\x00\x01alice\x00\x01\x00\x01"))
	f.Add([]byte{1, byte(storage.OpTouch), 2, 'f', 'x', 1, 0})
	f.Add((&revisionRecord{meta: storage.WriteMetadata{Actor: "a", Reason: "r", Labels: []storage.Label{{Key: "k", Value: "v"}}}}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodePayload(b); err == nil {
			_ = p.expiredAt(p.expiration)
		}
		_, _ = decodeRevisionRecord(b)
		_, _ = decodeSchema(b, 1)
		_ = decodeChanges(b, func(_ storage.Op, body, _ []byte) error {
			var comps [6][]byte
			_ = splitBody(body, &comps)
			return nil
		})
		var comps [6][]byte
		_ = splitBody(b, &comps)
		_, _, _ = nextComponent(b)
		_, _, _ = splitVersion(b)
	})
}

// FuzzComponentOrder checks that encoded pairs of strings sort like the
// pairs and decode back to them.
func FuzzComponentOrder(f *testing.F) {
	f.Add("a", "b", "a\x00", "")
	f.Add("", "\x00\x01", "\x00", "\xff")
	f.Fuzz(func(t *testing.T, a1, a2, b1, b2 string) {
		ea := appendComponent(appendComponent(nil, a1), a2)
		eb := appendComponent(appendComponent(nil, b1), b2)
		if got, want := bytes.Compare(ea, eb), cmp.Or(cmp.Compare(a1, b1), cmp.Compare(a2, b2)); got != want {
			t.Fatalf("(%q,%q) vs (%q,%q): encoded order %d, want %d", a1, a2, b1, b2, got, want)
		}
		c1, rest, err := nextComponent(ea)
		if err != nil {
			t.Fatal(err)
		}
		c2, rest, err := nextComponent(rest)
		if err != nil || string(c1) != a1 || string(c2) != a2 || len(rest) != 0 {
			t.Fatalf("round trip of (%q,%q): (%q,%q) rest %q err %v", a1, a2, c1, c2, rest, err)
		}
	})
}
