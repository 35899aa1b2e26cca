package auditlog

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

func rel(s string) graph.Relationship { return graph.MustParseRelationship(s) }

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// sample is an entry with every field set, changes that repeat some
// identity strings and not others, and expirations far from 1970.
func sample() storage.AuditEntry {
	caveated := rel("document:1#viewer@user:carol")
	caveated.Caveat = &graph.Caveat{Name: "ip_allowed", Context: map[string]any{"cidr": "10.0.0.0/8", "n": 2.5, "l": []any{"a", 1.0}}}
	noContext := rel("document:1#viewer@user:dan")
	noContext.Caveat = &graph.Caveat{Name: "weekday"}
	far := rel("document:2#viewer@group:eng#member")
	far.Expiration = at("9999-12-31T23:59:59.999999999Z")
	early := rel("folder:x#parent@document:2")
	early.Expiration = at("1600-01-01T00:00:00.5Z")
	return storage.AuditEntry{
		Revision:    42,
		CommittedAt: time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC),
		Kind:        storage.AuditWrite,
		Metadata: storage.WriteMetadata{Actor: "ci", Reason: "SEC-42 approved by bob",
			Labels: []storage.Label{{Key: "ticket", Value: "SEC-42"}, {Key: "approver", Value: "bob"}, {Key: "approver", Value: "amy"}}},
		Schema: []storage.SchemaChange{{Added: true, Kind: "relation", Name: "document#viewer", Detail: "relation viewer: user"}, {Kind: "definition", Name: "team"}},
		Changes: []storage.AuditChange{
			{Op: storage.OpCreate, Relationship: rel("document:1#viewer@user:alice")},
			{Op: storage.OpTouch, Relationship: caveated},
			{Op: storage.OpTouch, Relationship: noContext},
			{Op: storage.OpDelete, Relationship: rel("document:1#viewer@user:alice")},
			{Op: storage.OpTouch, Relationship: far},
			{Op: storage.OpTouch, Relationship: early},
			{Op: storage.OpTouch, Relationship: rel("folder:x#parent@document:2")},
		},
		PrevHash: storage.AuditHash{1, 2, 3},
	}
}

// TestRoundTrip checks that Decode returns what Seal encoded, labels
// sorted, and that the value carries a hash of its content.
func TestRoundTrip(t *testing.T) {
	for _, e := range []storage.AuditEntry{sample(), {Revision: 1, Kind: storage.AuditSchema, CommittedAt: time.Unix(0, 0).UTC()}} {
		v, err := Seal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSortedFunc(e.Metadata.Labels, compareLabels) {
			t.Fatalf("Seal left the labels unsorted: %v", e.Metadata.Labels)
		}
		if !Intact(v) {
			t.Fatal("a sealed entry is not intact")
		}
		got, err := Decode(v)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, e)
		}
		want := e
		want.Changes = nil
		if head, err := DecodeHead(v); err != nil || !reflect.DeepEqual(head, want) {
			t.Fatalf("DecodeHead = \n%+v, %v\nwant\n%+v", head, err, want)
		}
		if rev, err := Revision(v); rev != e.Revision || err != nil {
			t.Fatalf("Revision = %d, %v", rev, err)
		}
		if ts, err := CommittedAt(v); !ts.Equal(e.CommittedAt) || err != nil {
			t.Fatalf("CommittedAt = %v, %v", ts, err)
		}
		if h, err := HashOf(v); h != e.Hash || err != nil {
			t.Fatalf("HashOf = %x, %v", h, err)
		}
		if !reflect.DeepEqual(Terms(&got), Terms(&e)) {
			t.Fatalf("terms of the decoded entry %q differ from the original's %q", Terms(&got), Terms(&e))
		}
		if terms, err := DecodeTerms(v); err != nil || !slices.Equal(terms, Terms(&e)) {
			t.Fatalf("DecodeTerms = %q, %v; want %q", terms, err, Terms(&e))
		}
	}
}

// TestBuilder checks that a Builder, reused and given pre-encoded caveat
// contexts, produces exactly what Seal does, with the same terms, also
// for an entry large enough to be hashed in chunks.
func TestBuilder(t *testing.T) {
	large := storage.AuditEntry{Revision: 7, Kind: storage.AuditImport, CommittedAt: time.Now()}
	for i := range 20_000 {
		large.Changes = append(large.Changes, storage.AuditChange{Op: storage.OpTouch,
			Relationship: rel(fmt.Sprintf("document:d%d#viewer@user:u%d", i/10, i*7919%10000))})
	}
	var b Builder
	for _, e := range []storage.AuditEntry{sample(), large, sample()} {
		want, err := Seal(&e)
		if err != nil {
			t.Fatal(err)
		}
		b.Reset(e.Kind, e.Metadata, e.Schema)
		for i := range e.Changes {
			r := &e.Changes[i].Relationship
			var ctxJSON []byte
			if r.Caveat != nil {
				ctxJSON, _ = storage.EncodeCaveatContext(r.Caveat.Context)
			}
			if err := b.Add(e.Changes[i].Op, r, ctxJSON); err != nil {
				t.Fatal(err)
			}
		}
		terms := b.Terms()
		got, h := b.Seal(e.Revision, e.CommittedAt, e.PrevHash)
		if !bytes.Equal(got, want) || h != e.Hash {
			t.Fatalf("revision %d: the Builder's encoding differs from Seal's", e.Revision)
		}
		if !reflect.DeepEqual(terms, Terms(&e)) {
			t.Fatalf("revision %d: Builder terms %q, want %q", e.Revision, terms, Terms(&e))
		}
		if decoded, err := DecodeTerms(got); err != nil || !slices.Equal(decoded, terms) {
			t.Fatalf("revision %d: DecodeTerms = %d terms, %v; want the Builder's %d", e.Revision, len(decoded), err, len(terms))
		}
		if e.Revision == large.Revision && len(got) < 2*hashChunk {
			t.Fatalf("the large entry is %d bytes, not hashed in chunks", len(got))
		}
	}
}

// TestTerms checks the terms of the sample against the constructors.
func TestTerms(t *testing.T) {
	e := sample()
	want := []string{
		ActorTerm("ci"), LabelTerm("approver", "amy"), LabelTerm("approver", "bob"), LabelTerm("ticket", "SEC-42"),
		ResourceTypeTerm("document"), ResourceTypeTerm("folder"), ResourceTypeTerm("team"), SubjectTypeTerm("user"), SubjectTypeTerm("group"), SubjectTypeTerm("document"),
		ResourceTerm("document", "1"), ResourceTerm("document", "2"), ResourceTerm("folder", "x"),
		SubjectTerm("user", "alice"), SubjectTerm("user", "carol"), SubjectTerm("user", "dan"), SubjectTerm("group", "eng"), SubjectTerm("document", "2"),
		ExpiryDayTerm(*at("9999-12-31T00:00:00Z")), ExpiryDayTerm(*at("1600-01-01T00:00:00Z")),
	}
	slices.Sort(want)
	if got := Terms(&e); !slices.Equal(got, want) {
		t.Fatalf("terms\n got  %q\n want %q", got, want)
	}
	e.Kind = storage.AuditDelete
	if got := Terms(&e); !slices.Contains(got, KindTerm(storage.AuditDelete)) {
		t.Fatalf("a delete's terms %q lack its kind", got)
	}
}

// TestCorrupt checks that damaged values are refused without a panic:
// every truncation, and every single-byte change breaks the hash.
func TestCorrupt(t *testing.T) {
	e := sample()
	v, err := Seal(&e)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(v) {
		if Intact(v[:n]) {
			t.Fatalf("a value cut to %d of %d bytes is intact", n, len(v))
		}
		_, _ = Decode(v[:n])
		_, _ = DecodeTerms(v[:n])
	}
	for i := range v {
		w := bytes.Clone(v)
		w[i] ^= 0x40
		if Intact(w) {
			t.Fatalf("a value with byte %d changed is intact", i)
		}
		_, _ = Decode(w)
		_, _ = DecodeTerms(w)
	}
	w := bytes.Clone(v)
	w[0] = 1
	if _, err := Decode(w); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("another version decoded: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoders: errors, never a panic,
// and whatever decodes encodes back to a value that decodes the same.
func FuzzDecode(f *testing.F) {
	e := sample()
	v, _ := Seal(&e)
	f.Add(v)
	f.Add([]byte{version, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Revision(b)
		_, _ = CommittedAt(b)
		_, _ = HashOf(b)
		_ = Intact(b)
		terms, termsErr := DecodeTerms(b)
		d, err := Decode(b)
		if err != nil {
			return
		}
		if termsErr != nil || !slices.Equal(terms, Terms(&d)) {
			t.Fatalf("DecodeTerms = %q, %v; Decode's entry has terms %q", terms, termsErr, Terms(&d))
		}
		if _, err := Seal(&d); err != nil && !errors.Is(err, storage.ErrInvalidArgument) {
			t.Fatalf("reseal a decoded entry: %v", err)
		}
	})
}
