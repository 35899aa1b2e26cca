package server

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
				if !errors.Is(err, errMalformedZookie) && !errors.Is(err, errForeignZookie) {
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
// decoding never panics, a refused cursor is an INVALID_ARGUMENT naming
// the field, and an accepted one round-trips through encodeCursor.
func FuzzCursorDecode(f *testing.F) {
	bound, unbound := NewZookies("instance-a"), NewZookies("")
	for _, seed := range []string{
		"", "!!", "AQ",
		bound.encodeCursor(7, "document:a#viewer@user:b"),
		bound.encodeCursor(1<<64-1, `doc:1#viewer@user:a[cav:{"a":[1,{"b":null}]}][expiration:2026-01-02T03:04:05Z]`),
		bound.encodeCursor(0, ""),
		bound.encodeCursor(3, "resource-id"),
		unbound.encodeCursor(3, "document:a#viewer@user:b"),
		NewZookies("instance-b").encodeCursor(7, "document:a#viewer@user:b"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		for _, z := range []Zookies{bound, unbound} {
			rev, pos, err := z.decodeCursor(cursor)
			if err == nil {
				rev2, pos2, err := z.decodeCursor(z.encodeCursor(rev, pos))
				if err != nil || rev2 != rev || pos2 != pos {
					t.Fatalf("decodeCursor(%q) = %d, %q, which re-encodes to %d, %q, %v", cursor, rev, pos, rev2, pos2, err)
				}
			}
			rrev, r, err := z.relationshipCursor(cursor, "optional_cursor")
			if err != nil {
				st, ok := status.FromError(err)
				if !ok || st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "optional_cursor: ") {
					t.Fatalf("relationshipCursor(%q): error %v is not an INVALID_ARGUMENT naming the field", cursor, err)
				}
				continue
			}
			if rrev != rev || r == nil || r.Validate() != nil {
				t.Fatalf("relationshipCursor(%q) = %d, %v; decodeCursor gave revision %d", cursor, rrev, r, rev)
			}
		}
	})
}
