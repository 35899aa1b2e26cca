package core

import (
	"errors"
	"testing"

	"github.com/pembadb/pemba/storage"
)

func TestZookieRoundTrip(t *testing.T) {
	z := NewZookies("instance-a")
	for _, rev := range []storage.Revision{0, 1, 127, 128, 1 << 40, 1<<64 - 1} {
		got, err := z.Decode(z.Encode(rev))
		if err != nil || got != rev {
			t.Errorf("Decode(Encode(%d)) = %d, %v", rev, got, err)
		}
	}
}

func TestZookieRefusals(t *testing.T) {
	a, b, unbound := NewZookies("instance-a"), NewZookies("instance-b"), NewZookies("")
	valid := a.Encode(42)
	for _, c := range []struct {
		name  string
		token string
		codec Zookies
		want  error
	}{
		{"empty", "", a, ErrMalformedZookie},
		{"not base64url", "a+b/c", a, ErrMalformedZookie},
		{"too short", "AQ", a, ErrMalformedZookie},
		{"unknown version", "AgAAAAAAAAAAAQ", unbound, ErrMalformedZookie},
		{"trailing bytes", valid + "AA", a, ErrMalformedZookie},
		{"truncated revision", a.Encode(1 << 40)[:14], a, ErrMalformedZookie},
		{"other datastore", valid, b, ErrForeignZookie},
	} {
		if _, err := c.codec.Decode(c.token); !errors.Is(err, c.want) {
			t.Errorf("%s: Decode(%q) = %v, want %v", c.name, c.token, err, c.want)
		}
	}
	// An unbound codec accepts any instance.
	if rev, err := unbound.Decode(valid); err != nil || rev != 42 {
		t.Errorf("unbound Decode = %d, %v", rev, err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	z := NewZookies("i")
	c := z.EncodeCursor(7, "document:a#viewer@user:b")
	rev, r, err := z.RelationshipCursor(c)
	if err != nil || rev != 7 || r.String() != "document:a#viewer@user:b" {
		t.Errorf("RelationshipCursor = %d, %v, %v", rev, r, err)
	}
	if _, _, err := NewZookies("j").RelationshipCursor(c); !errors.Is(err, ErrMalformedCursor) {
		t.Error("a cursor from another datastore was accepted")
	}
	if _, _, err := z.RelationshipCursor("!!"); !errors.Is(err, ErrMalformedCursor) {
		t.Error("a malformed cursor was accepted")
	}
}

func BenchmarkZookieDecode(b *testing.B) {
	z := NewZookies("instance")
	tok := z.Encode(123456789)
	for b.Loop() {
		if _, err := z.Decode(tok); err != nil {
			b.Fatal(err)
		}
	}
}
