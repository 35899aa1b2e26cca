package core

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// A cursor resumes a streamed read at the same revision: base64url of
//
//	version | instance tag | revision (uvarint) | position (text)
//
// where position is the last relationship (in relationship syntax) or
// resource ID the client received.
const cursorVersion = 1

// EncodeCursor returns the cursor for position at rev.
func (z Zookies) EncodeCursor(rev storage.Revision, position string) string {
	buf := []byte{cursorVersion}
	buf = append(buf, z.tag[:]...)
	buf = binary.AppendUvarint(buf, uint64(rev))
	buf = append(buf, position...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// DecodeCursor returns a cursor's revision and position. Errors wrap
// ErrMalformedCursor.
func (z Zookies) DecodeCursor(c string) (storage.Revision, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) < 1+instanceTagSize+1 || raw[0] != cursorVersion {
		return 0, "", ErrMalformedCursor
	}
	if z.bound && [instanceTagSize]byte(raw[1:1+instanceTagSize]) != z.tag {
		return 0, "", fmt.Errorf("%w: it was issued by a different datastore", ErrMalformedCursor)
	}
	rev, n := binary.Uvarint(raw[1+instanceTagSize:])
	if n <= 0 {
		return 0, "", ErrMalformedCursor
	}
	return storage.Revision(rev), string(raw[1+instanceTagSize+n:]), nil
}

// ErrMalformedCursor is wrapped by every cursor decoding failure.
var ErrMalformedCursor = errors.New("malformed cursor")

// RelationshipCursor decodes a cursor whose position is a relationship.
// Errors wrap ErrMalformedCursor.
func (z Zookies) RelationshipCursor(c string) (storage.Revision, *graph.Relationship, error) {
	rev, pos, err := z.DecodeCursor(c)
	if err != nil {
		return 0, nil, err
	}
	r, err := graph.ParseRelationship(pos)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: its position is not a relationship", ErrMalformedCursor)
	}
	return rev, &r, nil
}
