package auditlog

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pembadb/pemba/storage"
)

// Anchor is an entry's hash recorded outside the datastore — the head hash
// a previous Verify printed — that the log must still contain.
type Anchor struct {
	Revision storage.Revision
	Hash     storage.AuditHash
}

// String renders an anchor as REVISION:HEXHASH, the form ParseAnchor reads.
func (a Anchor) String() string {
	return strconv.FormatUint(uint64(a.Revision), 10) + ":" + hex.EncodeToString(a.Hash[:])
}

// ParseAnchor reads REVISION:HEXHASH.
func ParseAnchor(s string) (Anchor, error) {
	revText, hashText, ok := strings.Cut(s, ":")
	rev, err := strconv.ParseUint(revText, 10, 64)
	if !ok || err != nil || rev == 0 {
		return Anchor{}, fmt.Errorf("anchor %q: want REVISION:SHA256HEX", s)
	}
	raw, err := hex.DecodeString(hashText)
	if err != nil || len(raw) != len(storage.AuditHash{}) {
		return Anchor{}, fmt.Errorf("anchor %q: the hash must be 64 hex digits", s)
	}
	return Anchor{Revision: storage.Revision(rev), Hash: storage.AuditHash(raw)}, nil
}

// Break is the first place a chain does not hold.
type Break struct {
	Revision storage.Revision
	Reason   string
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	// Entries is how many entries were checked, First and Last their
	// revisions; Head is the last entry's hash — record it (with Last) as
	// an anchor for the next verification.
	Entries     int
	First, Last storage.Revision
	Head        storage.AuditHash
	// Broken is the first broken link, nil when the chain holds.
	Broken *Break
}

// Verify recomputes the hash of every entry in the log, oldest first, and
// checks that each names its predecessor's hash, that revisions and commit
// times never go back, and that every anchor is still in the chain. It
// stops at the first broken link. The oldest entry's predecessor may have
// been trimmed: its PrevHash is taken on trust.
func Verify(ctx context.Context, log storage.AuditLog, anchors ...Anchor) (VerifyResult, error) {
	var res VerifyResult
	want := make(map[storage.Revision]storage.AuditHash, len(anchors))
	for _, a := range anchors {
		want[a.Revision] = a.Hash
	}
	var prevTime time.Time
	brk := func(rev storage.Revision, format string, args ...any) (VerifyResult, error) {
		res.Broken = &Break{Revision: rev, Reason: fmt.Sprintf(format, args...)}
		return res, nil
	}
	for raw, err := range log.AuditEntries(ctx, 0, 0, false) {
		if err != nil {
			return res, fmt.Errorf("verify audit log: %w", err)
		}
		rev := raw.Revision
		if !Intact(raw.Value) {
			return brk(rev, "the entry's content does not match its hash (modified or corrupt)")
		}
		e, err := Decode(raw.Value)
		if err != nil {
			return brk(rev, "the entry cannot be decoded: %v", err)
		}
		if e.Revision != rev {
			return brk(rev, "the entry stored under revision %d is the entry of revision %d", rev, e.Revision)
		}
		if res.Entries > 0 {
			if rev <= res.Last {
				return brk(rev, "revision %d follows revision %d", rev, res.Last)
			}
			if e.PrevHash != res.Head {
				return brk(rev, "the entry does not chain to the entry of revision %d (an entry before it was changed, removed or inserted)", res.Last)
			}
			if e.CommittedAt.Before(prevTime) {
				return brk(rev, "committed at %s, before revision %d (%s)", e.CommittedAt.Format(time.RFC3339Nano), res.Last, prevTime.Format(time.RFC3339Nano))
			}
		} else {
			res.First = rev
		}
		if h, ok := want[rev]; ok {
			if h != e.Hash {
				return brk(rev, "the entry's hash differs from the anchor's: the log was rewritten from here or earlier")
			}
			delete(want, rev)
		}
		res.Entries++
		res.Last, res.Head, prevTime = rev, e.Hash, e.CommittedAt
	}
	if len(want) == 0 {
		return res, nil
	}
	rev := slices.Min(slices.Collect(maps.Keys(want)))
	if res.Entries > 0 && rev < res.First {
		return brk(rev, "the anchor's entry is older than the oldest entry (%d): trimmed by retention, or the log was rewritten", res.First)
	}
	return brk(rev, "the anchor's entry is missing from the log: entries were removed or the log was rewritten")
}
