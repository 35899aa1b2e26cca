package core

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pembadb/pemba/storage"
)

// A zookie is the base64url (unpadded) encoding of
//
//	version (1 byte, zookieVersion) | instance (8 bytes) | revision (uvarint)
//
// The instance bytes are a hash of the datastore's instance ID, so a zookie
// from one datastore is refused by another instead of silently naming an
// unrelated revision. Clients treat the whole token as opaque.
const zookieVersion = 1

// instanceTagSize is the number of instance-hash bytes in a zookie.
const instanceTagSize = 8

// ErrMalformedZookie is wrapped by every decoding failure.
var ErrMalformedZookie = errors.New("malformed zookie")

// ErrForeignZookie reports a zookie minted by another datastore.
var ErrForeignZookie = errors.New("zookie was issued by a different datastore")

// Zookies mints and reads zookies for one datastore instance.
type Zookies struct {
	tag [instanceTagSize]byte
	// bound is false when the datastore has no instance ID; then zookies
	// carry a zero tag and the tag is not checked.
	bound bool
}

// NewZookies returns the codec for the datastore with the given instance
// ID ("" leaves zookies unbound).
func NewZookies(instanceID string) Zookies {
	z := Zookies{bound: instanceID != ""}
	if z.bound {
		sum := sha256.Sum256([]byte("pemba-instance:" + instanceID))
		copy(z.tag[:], sum[:])
	}
	return z
}

// Encode returns the zookie for rev.
func (z Zookies) Encode(rev storage.Revision) string {
	buf := make([]byte, 0, 1+instanceTagSize+binary.MaxVarintLen64)
	buf = append(buf, zookieVersion)
	buf = append(buf, z.tag[:]...)
	buf = binary.AppendUvarint(buf, uint64(rev))
	return base64.RawURLEncoding.EncodeToString(buf)
}

// Decode returns the revision a zookie names. Errors wrap
// ErrMalformedZookie or ErrForeignZookie.
func (z Zookies) Decode(token string) (storage.Revision, error) {
	if token == "" {
		return 0, fmt.Errorf("%w: empty token", ErrMalformedZookie)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, fmt.Errorf("%w: not base64url", ErrMalformedZookie)
	}
	if len(raw) < 1+instanceTagSize+1 {
		return 0, fmt.Errorf("%w: too short", ErrMalformedZookie)
	}
	if raw[0] != zookieVersion {
		return 0, fmt.Errorf("%w: unknown version %d", ErrMalformedZookie, raw[0])
	}
	rev, n := binary.Uvarint(raw[1+instanceTagSize:])
	if n <= 0 || 1+instanceTagSize+n != len(raw) {
		return 0, fmt.Errorf("%w: bad revision", ErrMalformedZookie)
	}
	if z.bound && [instanceTagSize]byte(raw[1:1+instanceTagSize]) != z.tag {
		return 0, ErrForeignZookie
	}
	return storage.Revision(rev), nil
}
