package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/pembadb/pemba/proto/pemba/v1"
)

const packedSchema = `
caveat at_least(level int, min int) { level >= min }
definition user {}
definition doc {
  relation viewer: user | user:* | user with at_least
  relation banned: user
  permission view = viewer - banned
}`

// TestLookupSubjectsPacked: with subjects_per_response, LookupSubjects
// answers with the same subjects, in the same order and with the same
// fields, packed up to that many a response, each response with its
// zookie and without the fields of an unpacked one.
func TestLookupSubjectsPacked(t *testing.T) {
	rels := []string{"doc:w#viewer@user:*", "doc:w#banned@user:eve", "doc:w#banned@user:fay",
		"doc:d#viewer@user:cal[at_least:{\"min\":3}]"}
	for i := range 7 {
		rels = append(rels, fmt.Sprintf("doc:d#viewer@user:u%d", i))
	}
	_, _, conn := newSchemaServer(t, packedSchema, rels...)
	client := pb.NewPermissionServiceClient(conn)
	ctx := context.Background()

	lookup := func(doc string, perResponse uint32) ([]*pb.LookupSubjectsResponse, error) {
		stream, err := client.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Consistency: fullyConsistent(), Resource: objRef("doc", doc),
			Permission: "view", SubjectType: "user", SubjectsPerResponse: perResponse})
		if err != nil {
			return nil, err
		}
		return drainStream(stream.Recv)
	}
	for _, doc := range []string{"d", "w"} {
		unpacked, err := lookup(doc, 0)
		if err != nil {
			t.Fatal(err)
		}
		one, err := lookup(doc, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(unpacked) == 0 || !slices.EqualFunc(one, unpacked, func(a, b *pb.LookupSubjectsResponse) bool { return proto.Equal(a, b) }) {
			t.Fatalf("doc:%s: subjects_per_response 1 answered %v, 0 answered %v", doc, one, unpacked)
		}
		for _, n := range []uint32{2, 3, 1000} {
			packed, err := lookup(doc, n)
			if err != nil {
				t.Fatal(err)
			}
			if want := (len(unpacked) + int(n) - 1) / int(n); len(packed) != want {
				t.Errorf("doc:%s, %d per response: %d responses, want %d", doc, n, len(packed), want)
			}
			var flat []*pb.LookupSubjectsResponse
			for _, resp := range packed {
				if len(resp.GetSubjects()) == 0 || len(resp.GetSubjects()) > int(n) {
					t.Errorf("doc:%s, %d per response: a response of %d subjects", doc, n, len(resp.GetSubjects()))
				}
				if resp.GetSubjectId() != "" || resp.GetPermissionship() != pb.Permissionship_PERMISSIONSHIP_UNSPECIFIED || resp.GetLookedUpAt().GetToken() == "" {
					t.Errorf("doc:%s, %d per response: response fields %v", doc, n, resp)
				}
				for _, f := range resp.GetSubjects() {
					flat = append(flat, &pb.LookupSubjectsResponse{SubjectId: f.GetSubjectId(), ExcludedSubjectIds: f.GetExcludedSubjectIds(),
						Permissionship: f.GetPermissionship(), MissingContext: f.GetMissingContext(), LookedUpAt: resp.GetLookedUpAt()})
				}
			}
			if !slices.EqualFunc(flat, unpacked, func(a, b *pb.LookupSubjectsResponse) bool { return proto.Equal(a, b) }) {
				t.Errorf("doc:%s, %d per response: subjects\n%v\nwant\n%v", doc, n, flat, unpacked)
			}
		}
	}
	// The answers hold what the packing must carry: a conditional subject
	// and its missing context, a wildcard and its exclusions.
	d, _ := lookup("d", 1000)
	w, _ := lookup("w", 1000)
	var sawConditional, sawExcluded bool
	for _, f := range append(d[0].GetSubjects(), w[0].GetSubjects()...) {
		sawConditional = sawConditional || (f.GetSubjectId() == "cal" && f.GetPermissionship() == pb.Permissionship_PERMISSIONSHIP_CONDITIONAL_PERMISSION && slices.Equal(f.GetMissingContext(), []string{"level"}))
		sawExcluded = sawExcluded || (f.GetSubjectId() == "*" && slices.Equal(f.GetExcludedSubjectIds(), []string{"eve", "fay"}))
	}
	if !sawConditional || !sawExcluded {
		t.Errorf("packed answers %v and %v: conditional cal %v, wildcard without eve and fay %v", d, w, sawConditional, sawExcluded)
	}

	_, err := lookup("d", 1001)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "subjects_per_response") || !strings.Contains(err.Error(), "1000") {
		t.Errorf("1001 per response: %v, want InvalidArgument naming subjects_per_response and its limit", err)
	}
}

// TestSubjectPacker: a response is sent when full, when its IDs reach
// packedIDBytes, when a subject is found packedWait after its first, and
// at the end; never empty.
func TestSubjectPacker(t *testing.T) {
	var sent [][]string
	clock := time.Unix(0, 0)
	p := newSubjectPacker(func(r *pb.LookupSubjectsResponse) error {
		var ids []string
		for _, f := range r.GetSubjects() {
			ids = append(ids, f.GetSubjectId())
		}
		sent = append(sent, ids)
		return nil
	}, &pb.Zookie{Token: "z"}, 3)
	p.now = func() time.Time { return clock }
	add := func(id string, excluded ...string) {
		t.Helper()
		if err := p.add(id, excluded, pb.Permissionship_PERMISSIONSHIP_HAS_PERMISSION, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.flush(); err != nil || len(sent) != 0 {
		t.Fatalf("flush with nothing packed: %v, sent %v", err, sent)
	}
	add("a")
	add("b")
	add("c") // full
	add("d")
	clock = clock.Add(packedWait) // found slowly
	add("e")
	half := strings.Repeat("x", packedIDBytes/2)
	add("*", half)
	add("f", half) // 1 MiB of IDs
	add("g")
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"a", "b", "c"}, {"d", "e"}, {"*", "f"}, {"g"}}
	if !slices.EqualFunc(sent, want, slices.Equal[[]string]) {
		t.Errorf("responses %v, want %v", sent, want)
	}
}
