package auditlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/pembadb/pemba/storage"
)

// A posting list is the revisions an index term names from one indexer
// batch, ascending. Engines store it keyed by its newest revision (last)
// with the rest encoded by AppendPostingList: the gap from each revision
// down to the one before it, newest first, as uvarints. An empty encoding
// is the list of last alone.

// ErrPostingList marks a posting list that cannot be decoded.
var ErrPostingList = errors.New("malformed audit posting list")

// AppendPostingList appends the encoding of revs (ascending, at least one;
// the key holds the last) to dst.
func AppendPostingList(dst []byte, revs []storage.Revision) []byte {
	for i := len(revs) - 1; i > 0; i-- {
		dst = binary.AppendUvarint(dst, uint64(revs[i]-revs[i-1]))
	}
	return dst
}

// DecodePostingList appends to dst, ascending, the revisions of the
// posting list whose newest revision is last and whose encoding is v.
func DecodePostingList(dst []storage.Revision, last storage.Revision, v []byte) ([]storage.Revision, error) {
	start := len(dst)
	dst = append(dst, last)
	for len(v) > 0 {
		gap, n := binary.Uvarint(v)
		if n <= 0 || gap == 0 || gap >= uint64(last) {
			return dst[:start], fmt.Errorf("%w: ending at %d", ErrPostingList, last)
		}
		last -= storage.Revision(gap)
		dst = append(dst, last)
		v = v[n:]
	}
	slices.Reverse(dst[start:])
	return dst, nil
}
