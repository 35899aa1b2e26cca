package server

import (
	"encoding/base64"
	"encoding/binary"
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

func (z Zookies) encodeCursor(rev storage.Revision, position string) string {
	buf := []byte{cursorVersion}
	buf = append(buf, z.tag[:]...)
	buf = binary.AppendUvarint(buf, uint64(rev))
	buf = append(buf, position...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func (z Zookies) decodeCursor(c string) (storage.Revision, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) < 1+instanceTagSize+1 || raw[0] != cursorVersion {
		return 0, "", fmt.Errorf("malformed cursor")
	}
	if z.bound && [instanceTagSize]byte(raw[1:1+instanceTagSize]) != z.tag {
		return 0, "", fmt.Errorf("cursor was issued by a different datastore")
	}
	rev, n := binary.Uvarint(raw[1+instanceTagSize:])
	if n <= 0 {
		return 0, "", fmt.Errorf("malformed cursor")
	}
	return storage.Revision(rev), string(raw[1+instanceTagSize+n:]), nil
}

// relationshipCursor decodes a cursor whose position is a relationship.
func (z Zookies) relationshipCursor(c, field string) (storage.Revision, *graph.Relationship, error) {
	rev, pos, err := z.decodeCursor(c)
	if err != nil {
		return 0, nil, invalidField(field, "%v", err)
	}
	r, err := graph.ParseRelationship(pos)
	if err != nil {
		return 0, nil, invalidField(field, "malformed cursor")
	}
	return rev, &r, nil
}
