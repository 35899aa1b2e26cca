package auditlog

import (
	"errors"
	"slices"
	"testing"

	"github.com/pembadb/pemba/storage"
)

func TestPostingListRoundTrip(t *testing.T) {
	for _, revs := range [][]storage.Revision{
		{1}, {1, 2}, {5, 300, 301, 70000}, {1, 1 << 40},
	} {
		enc := AppendPostingList(nil, revs)
		if len(revs) == 1 && len(enc) != 0 {
			t.Errorf("%v: encoding %x, want empty", revs, enc)
		}
		got, err := DecodePostingList([]storage.Revision{99}, revs[len(revs)-1], enc)
		if err != nil || !slices.Equal(got[1:], revs) || got[0] != 99 {
			t.Errorf("%v: decoded %v, %v", revs, got, err)
		}
	}
}

func TestPostingListMalformed(t *testing.T) {
	for name, c := range map[string]struct {
		last storage.Revision
		enc  []byte
	}{
		"zero gap":        {10, []byte{0}},
		"gap past 1":      {10, []byte{10}},
		"truncated":       {1000, []byte{0x80}},
		"gaps sum past 1": {10, []byte{5, 5}},
	} {
		if got, err := DecodePostingList(nil, c.last, c.enc); !errors.Is(err, ErrPostingList) || len(got) != 0 {
			t.Errorf("%s: %v, %v; want ErrPostingList and nothing", name, got, err)
		}
	}
}
