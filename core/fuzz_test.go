package core

import (
	"errors"
	"testing"
)

// FuzzZookieDecode decodes arbitrary tokens, as clients send them: decoding
// never panics, every refusal wraps one of the two zookie errors (which
// map to INVALID_ARGUMENT), and an accepted token names a revision that
// encodes to a token decoding to the same revision.
func FuzzZookieDecode(f *testing.F) {
	bound, unbound := NewZookies("instance-a"), NewZookies("")
	for _, seed := range []string{
		"", "AQ", "a+b/c", "====",
		bound.Encode(0), bound.Encode(42), bound.Encode(1<<64 - 1),
		unbound.Encode(7), NewZookies("instance-b").Encode(42),
		bound.Encode(42) + "AA", bound.Encode(1 << 40)[:14],
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, z := range []Zookies{bound, unbound} {
			rev, err := z.Decode(token)
			if err != nil {
				if !errors.Is(err, ErrMalformedZookie) && !errors.Is(err, ErrForeignZookie) {
					t.Fatalf("Decode(%q): error %v wraps neither zookie error", token, err)
				}
				continue
			}
			if again, err := z.Decode(z.Encode(rev)); err != nil || again != rev {
				t.Fatalf("Decode(%q) = %d, which re-encodes to %d, %v", token, rev, again, err)
			}
		}
	})
}

// FuzzCursorDecode decodes arbitrary cursors, as clients send them back:
// decoding never panics, a refused cursor wraps ErrMalformedCursor, and an accepted one round-trips through EncodeCursor.
func FuzzCursorDecode(f *testing.F) {
	bound, unbound := NewZookies("instance-a"), NewZookies("")
	for _, seed := range []string{
		"", "!!", "AQ",
		bound.EncodeCursor(7, "document:a#viewer@user:b"),
		bound.EncodeCursor(1<<64-1, `doc:1#viewer@user:a[cav:{"a":[1,{"b":null}]}][expiration:2026-01-02T03:04:05Z]`),
		bound.EncodeCursor(0, ""),
		bound.EncodeCursor(3, "resource-id"),
		unbound.EncodeCursor(3, "document:a#viewer@user:b"),
		NewZookies("instance-b").EncodeCursor(7, "document:a#viewer@user:b"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		for _, z := range []Zookies{bound, unbound} {
			rev, pos, err := z.DecodeCursor(cursor)
			if err == nil {
				rev2, pos2, err := z.DecodeCursor(z.EncodeCursor(rev, pos))
				if err != nil || rev2 != rev || pos2 != pos {
					t.Fatalf("DecodeCursor(%q) = %d, %q, which re-encodes to %d, %q, %v", cursor, rev, pos, rev2, pos2, err)
				}
			}
			rrev, r, err := z.RelationshipCursor(cursor)
			if err != nil {
				if !errors.Is(err, ErrMalformedCursor) {
					t.Fatalf("RelationshipCursor(%q): error %v does not wrap ErrMalformedCursor", cursor, err)
				}
				continue
			}
			if rrev != rev || r == nil || r.Validate() != nil {
				t.Fatalf("RelationshipCursor(%q) = %d, %v; DecodeCursor gave revision %d", cursor, rrev, r, rev)
			}
		}
	})
}
