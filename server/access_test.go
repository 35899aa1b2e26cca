package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pembadb/pemba/graph"
	pb "github.com/pembadb/pemba/proto/pemba/v1"
	"github.com/pembadb/pemba/storage/pebble"
)

const accessSchema = `use expiration

definition user {}
definition group {
  relation member: user | user with expiration | group#member
}
definition doc {
  relation viewer: user | user with expiration | user:* | group#member
  relation banned: user | user with expiration
  permission view = viewer - banned
}`

// accessFixture is a server holding accessSchema and a few grants: alice
// views doc:plan directly, dana through group eng until expires, and
// every user but bob views doc:pub through a wildcard.
type accessFixture struct {
	srv     *Server
	access  pb.AccessServiceClient
	rels    pb.RelationshipServiceClient
	expires time.Time
	// before is the zookie of the schema write, before any grant.
	before *pb.Zookie
}

func newAccessFixture(t *testing.T, edit func(*Config)) *accessFixture {
	t.Helper()
	// Every read sees the writes before it: minimize_latency reads the head.
	srv := newHTTPServer(t, nil, func(c *Config) {
		c.Quantization = time.Nanosecond
		if edit != nil {
			edit(c)
		}
	})
	cc := dialTest(t, srv)
	f := &accessFixture{srv: srv, access: pb.NewAccessServiceClient(cc), rels: pb.NewRelationshipServiceClient(cc),
		expires: time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)}
	resp, err := pb.NewSchemaServiceClient(cc).WriteSchema(context.Background(), &pb.WriteSchemaRequest{Schema: accessSchema})
	if err != nil {
		t.Fatal(err)
	}
	f.before = resp.GetWrittenAt()
	f.write(t, "grants", "doc:plan#viewer@user:alice", "doc:plan#viewer@group:eng#member",
		"doc:pub#viewer@user:*", "doc:pub#banned@user:bob")
	f.write(t, "dana joins eng", fmt.Sprintf("group:eng#member@user:dana[expiration:%s]", f.expires.Format(time.RFC3339)))
	return f
}

// write touches relationships in one write with a reason and returns its
// zookie.
func (f *accessFixture) write(t *testing.T, reason string, rels ...string) *pb.Zookie {
	t.Helper()
	req := &pb.WriteRelationshipsRequest{Reason: reason}
	for _, r := range rels {
		req.Updates = append(req.Updates, touchUpdate(protoRel(t, r)))
	}
	resp, err := f.rels.WriteRelationships(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetWrittenAt()
}

// recv reads a stream to its end.
func recv[T any](stream interface{ Recv() (T, error) }) ([]T, error) {
	var out []T
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// accessLine prints an access row on one line for comparisons.
func accessLine(a *pb.Access) string {
	s := fmt.Sprintf("%s#%s@%s", graph.ObjectRef{Type: a.GetResource().GetType(), ID: a.GetResource().GetId()}, a.GetPermission(),
		graph.SubjectRef{Object: graph.ObjectRef{Type: a.GetSubject().GetObject().GetType(), ID: a.GetSubject().GetObject().GetId()},
			Relation: a.GetSubject().GetRelation()})
	if ex := a.GetExcludedSubjectIds(); len(ex) > 0 {
		s += " except " + strings.Join(ex, ",")
	}
	var hs []string
	for _, h := range a.GetHoldings() {
		hs = append(hs, strings.ToLower(strings.TrimPrefix(h.String(), "HOLDING_")))
	}
	s += " [" + strings.Join(hs, ",") + "]"
	if a.GetEndsAt() != nil {
		s += " ends " + a.GetEndsAt().AsTime().UTC().Format(time.RFC3339)
	}
	return s
}

func accessLines(t *testing.T, resps []*pb.AccessResponse, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range resps {
		out = append(out, accessLine(r.GetAccess()))
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWhoCanAccess: every subject of doc:plan and doc:pub, how each
// holds the access and when it ends; the wildcard names its exception.
func TestWhoCanAccess(t *testing.T) {
	f := newAccessFixture(t, nil)
	ctx := context.Background()
	stream, err := f.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{Resource: &pb.ObjectRef{Type: "doc", Id: "plan"}})
	if err != nil {
		t.Fatal(err)
	}
	resps, err := recv[*pb.AccessResponse](stream)
	ends := f.expires.Format(time.RFC3339)
	wantLines(t, "who doc:plan", accessLines(t, resps, err), []string{
		"doc:plan#view@user:alice [direct]",
		"doc:plan#view@user:dana [group] ends " + ends,
	})
	if len(resps) > 0 && resps[1].GetAccess().GetPath().GetText() != "user:dana → group:eng#member → doc:plan#viewer → doc:plan#view" {
		t.Errorf("dana's path: %q", resps[1].GetAccess().GetPath().GetText())
	}
	stream, err = f.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{Resource: &pb.ObjectRef{Type: "doc", Id: "pub"},
		Permissions: []string{"view"}, SubjectTypes: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	resps, err = recv[*pb.AccessResponse](stream)
	wantLines(t, "who doc:pub", accessLines(t, resps, err), []string{"doc:pub#view@user:* except bob [wildcard]"})
}

// TestAccessTooLarge: what can access holding more objects than the
// server's bound (--max-access-objects) is RESOURCE_EXHAUSTED, naming the
// flag, where it must hold them at once (a type that reaches itself);
// where its lookup streams in ID order, and for who can access, the bound
// does not apply.
func TestAccessTooLarge(t *testing.T) {
	f := newAccessFixture(t, func(c *Config) { c.Check.MaxAccessObjects = 1 })
	// Groups reach themselves, so dana's groups are looked up whole.
	f.write(t, "nest", "group:ops#member@group:eng#member")
	stream, err := f.access.WhatCanAccess(context.Background(), &pb.WhatCanAccessRequest{Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}},
		ResourceTypes: []string{"group"}})
	if err == nil {
		_, err = recv[*pb.AccessResponse](stream)
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "--max-access-objects") {
		t.Fatalf("what can access past the bound: %v, want RESOURCE_EXHAUSTED naming --max-access-objects", err)
	}
	// What can access streams dana's documents in ID order; who can
	// access answers a permission with more subjects a window of subjects
	// at a time.
	docs, err := f.access.WhatCanAccess(context.Background(), &pb.WhatCanAccessRequest{Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}},
		ResourceTypes: []string{"doc"}})
	if err != nil {
		t.Fatal(err)
	}
	if resps, err := recv[*pb.AccessResponse](docs); err != nil || len(resps) < 2 {
		t.Fatalf("what can access past the bound: %d rows, %v; want every row", len(resps), err)
	}
	who, err := f.access.WhoCanAccess(context.Background(), &pb.WhoCanAccessRequest{Resource: &pb.ObjectRef{Type: "doc", Id: "plan"}})
	if err != nil {
		t.Fatal(err)
	}
	if resps, err := recv[*pb.AccessResponse](who); err != nil || len(resps) < 2 {
		t.Fatalf("who can access past the bound: %d rows, %v; want every row", len(resps), err)
	}
}

// TestWhatCanAccessPages: a subject's accesses, one page at a time: each
// page resumes after the last row's cursor at the same revision.
func TestWhatCanAccessPages(t *testing.T) {
	f := newAccessFixture(t, nil)
	ctx := context.Background()
	req := &pb.WhatCanAccessRequest{Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}}}
	stream, err := f.access.WhatCanAccess(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	all, err := recv[*pb.AccessResponse](stream)
	want := []string{
		"doc:plan#view@user:dana [group] ends " + f.expires.Format(time.RFC3339),
		"doc:pub#view@user:dana [wildcard]",
		// group defines no permission: its relations are asked about.
		"group:eng#member@user:dana [direct] ends " + f.expires.Format(time.RFC3339),
	}
	wantLines(t, "what user:dana", accessLines(t, all, err), want)

	req.Limit = 1
	var paged []string
	var readAt string
	for range 5 {
		stream, err := f.access.WhatCanAccess(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		page, err := recv[*pb.AccessResponse](stream)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if readAt == "" {
			readAt = page[0].GetReadAt().GetToken()
			// A write between pages is not seen: the cursor pins the revision.
			f.write(t, "between pages", "doc:zzz#viewer@user:dana")
		} else if page[0].GetReadAt().GetToken() != readAt {
			t.Errorf("page read at %s, the first at %s", page[0].GetReadAt().GetToken(), readAt)
		}
		paged = append(paged, accessLines(t, page, nil)...)
		req.Cursor = page[len(page)-1].GetCursor()
	}
	wantLines(t, "what user:dana, by pages of 1", paged, want)
}

// TestAccessBadRequests: names the schema does not define, malformed
// cursors and missing fields are INVALID_ARGUMENT naming the field.
func TestAccessBadRequests(t *testing.T) {
	f := newAccessFixture(t, nil)
	ctx := context.Background()
	doc := &pb.ObjectRef{Type: "doc", Id: "plan"}
	dana := &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}}
	for _, c := range []struct {
		name string
		call func() (grpc.ClientStream, error)
		want string
	}{
		{"unknown permission", func() (grpc.ClientStream, error) {
			return f.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{Resource: doc, Permissions: []string{"veiw"}})
		}, `permissions: definition "doc" has no permission or relation "veiw"`},
		{"unknown resource type", func() (grpc.ClientStream, error) {
			return f.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{Resource: &pb.ObjectRef{Type: "file", Id: "x"}})
		}, `resource.type: type "file" is not defined`},
		{"unknown subject type", func() (grpc.ClientStream, error) {
			return f.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{Resource: doc, SubjectTypes: []string{"robot"}})
		}, `subject_types: type "robot" is not defined`},
		{"missing resource", func() (grpc.ClientStream, error) {
			return f.access.WhoCanAccess(ctx, &pb.WhoCanAccessRequest{})
		}, "resource: missing"},
		{"bad cursor", func() (grpc.ClientStream, error) {
			return f.access.WhatCanAccess(ctx, &pb.WhatCanAccessRequest{Subject: dana, Cursor: "nonsense"})
		}, "cursor:"},
		{"unknown permission of what", func() (grpc.ClientStream, error) {
			return f.access.WhatCanAccess(ctx, &pb.WhatCanAccessRequest{Subject: dana, Permissions: []string{"veiw"}})
		}, `permissions: no resource type asked about has a permission or relation "veiw"`},
		{"within missing", func() (grpc.ClientStream, error) {
			return f.access.ExpiringAccess(ctx, &pb.ExpiringAccessRequest{})
		}, "within: required"},
		{"within 0", func() (grpc.ClientStream, error) {
			return f.access.ExpiringAccess(ctx, &pb.ExpiringAccessRequest{Within: durationpb.New(0)})
		}, "within: required: a positive duration"},
		{"within too long", func() (grpc.ClientStream, error) {
			return f.access.ExpiringAccess(ctx, &pb.ExpiringAccessRequest{Within: durationpb.New(400 * 24 * time.Hour)})
		}, "within: 9600h0m0s exceeds the limit of 366 days"},
		{"expiring, unknown type", func() (grpc.ClientStream, error) {
			return f.access.ExpiringAccess(ctx, &pb.ExpiringAccessRequest{Within: durationpb.New(time.Hour), ResourceType: "file"})
		}, `resource_type: type "file" is not defined`},
		{"diff without from", func() (grpc.ClientStream, error) {
			return f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana})
		}, "from_time: missing"},
		{"diff, from after to", func() (grpc.ClientStream, error) {
			return f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana,
				From: &pb.AccessDiffRequest_FromTime{FromTime: timestamppb.Now()},
				To:   &pb.AccessDiffRequest_ToZookie{ToZookie: f.before}})
		}, "from_time: revision"},
		{"diff, to in the future", func() (grpc.ClientStream, error) {
			return f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana,
				From: &pb.AccessDiffRequest_FromZookie{FromZookie: f.before},
				To:   &pb.AccessDiffRequest_ToTime{ToTime: timestamppb.New(time.Now().Add(time.Hour))}})
		}, "to_time: "},
		{"diff, malformed zookie", func() (grpc.ClientStream, error) {
			return f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana,
				From: &pb.AccessDiffRequest_FromZookie{FromZookie: &pb.Zookie{Token: "nonsense"}}})
		}, "from_zookie:"},
		{"diff, unknown permission", func() (grpc.ClientStream, error) {
			return f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana, Permissions: []string{"veiw"},
				From: &pb.AccessDiffRequest_FromZookie{FromZookie: f.before}})
		}, `permissions: no resource type asked about has a permission or relation "veiw"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			stream, err := c.call()
			if err == nil {
				// The error comes before any message.
				err = stream.RecvMsg(new(pb.AccessResponse))
			}
			wantCode(t, c.name, err, codes.InvalidArgument, c.want)
		})
	}
}

// TestExpiringAccess: dana's membership expires within 7 days, and with
// it her view of doc:plan; nothing expires within a day. The answer
// needs no audit log, and pages resume where they stopped.
func TestExpiringAccess(t *testing.T) {
	for _, audited := range []bool{true, false} {
		t.Run(fmt.Sprintf("audit=%v", audited), func(t *testing.T) {
			f := newAccessFixture(t, func(c *Config) { c.DisableAudit = !audited })
			ctx := context.Background()
			ends := f.expires.Format(time.RFC3339)
			want := []string{
				"relationship group:eng#member@user:dana[expiration:" + ends + "]",
				"access doc:plan#view@user:dana [group] ends " + ends,
				"access group:eng#member@user:dana [direct] ends " + ends,
			}
			expiring := func(req *pb.ExpiringAccessRequest) []string {
				t.Helper()
				stream, err := f.access.ExpiringAccess(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				resps, err := recv[*pb.ExpiringAccessResponse](stream)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, r := range resps {
					if rel := r.GetRelationship(); rel != nil {
						out = append(out, "relationship "+relationshipFromProtoForTest(rel))
					} else {
						out = append(out, "access "+accessLine(r.GetAccess()))
					}
					if r.GetCursor() == "" || r.GetReadAt() == nil {
						t.Errorf("item without cursor or read_at: %v", r)
					}
				}
				if len(resps) > 0 {
					req.Cursor = resps[len(resps)-1].GetCursor()
				}
				return out
			}
			wantLines(t, "within 7d", expiring(&pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour)}), want)
			wantLines(t, "within 24h", expiring(&pb.ExpiringAccessRequest{Within: durationpb.New(24 * time.Hour)}), nil)
			wantLines(t, "relationships only", expiring(&pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour), RelationshipsOnly: true}), want[:1])
			wantLines(t, "another subject", expiring(&pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour),
				Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "alice"}}}), nil)
			wantLines(t, "another type", expiring(&pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour), ResourceType: "doc"}), want[1:2])
			wantLines(t, "groups", expiring(&pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour), ResourceType: "group"}),
				[]string{want[0], want[2]})

			req := &pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour), Limit: 1,
				Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}}}
			var paged []string
			for range 4 {
				page := expiring(req)
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
			}
			wantLines(t, "by pages of 1", paged, want)
		})
	}
}

func relationshipFromProtoForTest(r *pb.Relationship) string {
	rel, err := relationshipFromProto(r, "relationship")
	if err != nil {
		return err.Error()
	}
	return rel.String()
}

// diffLines prints an AccessDiff answer, one line per access with its
// causes and their audit actor and reason.
func diffLines(t *testing.T, stream pb.AccessService_AccessDiffClient, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	resps, err := recv[*pb.AccessDiffResponse](stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range resps {
		line := map[pb.AccessDiffResponse_Change]string{pb.AccessDiffResponse_CHANGE_GAINED: "+", pb.AccessDiffResponse_CHANGE_LOST: "-"}[r.GetChange()] +
			accessLine(r.GetAccess())
		for _, c := range r.GetCauses() {
			line += " | " + strings.ToLower(strings.TrimPrefix(c.GetOperation().String(), "OPERATION_")) + " " + relationshipFromProtoForTest(c.GetRelationship())
			if ev := c.GetAudit(); ev != nil {
				line += fmt.Sprintf(" by %s %q", ev.GetActor(), ev.GetReason())
			}
		}
		if r.GetFrom() == nil || r.GetTo() == nil {
			t.Errorf("row without from or to: %v", r)
		}
		out = append(out, line)
	}
	return out
}

// TestAccessDiff: what dana and alice gained and lost since the schema
// was written, since a time, and between two zookies, each with the
// write that caused it and its audit event; an expiration between the
// ends is a cause too.
func TestAccessDiff(t *testing.T) {
	f := newAccessFixture(t, nil)
	ctx := context.Background()
	dana := &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}}
	alice := &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "alice"}}
	ends := f.expires.Format(time.RFC3339)
	stream, err := f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana, From: &pb.AccessDiffRequest_FromZookie{FromZookie: f.before}})
	wantLines(t, "dana since the schema", diffLines(t, stream, err), []string{
		"+doc:plan#view@user:dana [group] ends " + ends +
			` | written doc:plan#viewer@group:eng#member by tester "grants"` +
			` | written group:eng#member@user:dana[expiration:` + ends + `] by tester "dana joins eng"`,
		`+doc:pub#view@user:dana [wildcard] | written doc:pub#viewer@user:* by tester "grants"`,
		"+group:eng#member@user:dana [direct] ends " + ends +
			` | written group:eng#member@user:dana[expiration:` + ends + `] by tester "dana joins eng"`,
	})

	time.Sleep(5 * time.Millisecond)
	mark := time.Now()
	time.Sleep(5 * time.Millisecond)
	revoked := f.write(t, "unrelated", "doc:other#viewer@user:zed") // changes nothing about alice
	_, err = f.rels.WriteRelationships(ctx, &pb.WriteRelationshipsRequest{Reason: "offboarding",
		Updates: []*pb.RelationshipUpdate{{Operation: pb.RelationshipUpdate_OPERATION_DELETE, Relationship: protoRel(t, "doc:plan#viewer@user:alice")}}})
	if err != nil {
		t.Fatal(err)
	}
	stream, err = f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: alice, From: &pb.AccessDiffRequest_FromTime{FromTime: timestamppb.New(mark)}})
	wantLines(t, "alice since a time", diffLines(t, stream, err), []string{
		`-doc:plan#view@user:alice [direct] | deleted doc:plan#viewer@user:alice by tester "offboarding"`,
	})
	stream, err = f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: alice, From: &pb.AccessDiffRequest_FromZookie{FromZookie: f.before},
		To: &pb.AccessDiffRequest_ToZookie{ToZookie: revoked}, Permissions: []string{"view"}})
	wantLines(t, "alice between zookies", diffLines(t, stream, err), []string{
		`+doc:plan#view@user:alice [direct] | written doc:plan#viewer@user:alice by tester "grants"`,
		`+doc:pub#view@user:alice [wildcard] | written doc:pub#viewer@user:* by tester "grants"`,
	})

	// erin's grant on doc:plan and her ban from doc:pub expire a moment
	// after they are written: she loses one and gains the other.
	expiry := time.Now().Add(time.Second).UTC().Truncate(time.Second).Add(time.Second)
	at := expiry.Format(time.RFC3339)
	granted := f.write(t, "temporary", "doc:plan#viewer@user:erin[expiration:"+at+"]", "doc:pub#banned@user:erin[expiration:"+at+"]")
	time.Sleep(time.Until(expiry) + 10*time.Millisecond)
	erin := &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "erin"}}
	stream, err = f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: erin, From: &pb.AccessDiffRequest_FromZookie{FromZookie: granted},
		ResourceTypes: []string{"doc"}, Permissions: []string{"view"}})
	wantLines(t, "erin after her grant and her ban expired", diffLines(t, stream, err), []string{
		`-doc:plan#view@user:erin [direct] ends ` + at + ` | expired doc:plan#viewer@user:erin[expiration:` + at + `] by tester "temporary"`,
		`+doc:pub#view@user:erin [wildcard] | expired doc:pub#banned@user:erin[expiration:` + at + `] by tester "temporary"`,
	})
}

// TestAccessDiffGarbageCollected: a zookie whose revision was collected
// is FAILED_PRECONDITION naming the field.
func TestAccessDiffGarbageCollected(t *testing.T) {
	engine, err := pebble.Open(pebble.Options{InMemory: true, GCWindow: time.Millisecond, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	srv := newHTTPServer(t, engine, func(c *Config) { c.Quantization = time.Nanosecond })
	f := &accessFixture{srv: srv}
	cc := dialTest(t, srv)
	f.access, f.rels = pb.NewAccessServiceClient(cc), pb.NewRelationshipServiceClient(cc)
	ctx := context.Background()
	if _, err := pb.NewSchemaServiceClient(cc).WriteSchema(ctx, &pb.WriteSchemaRequest{Schema: accessSchema}); err != nil {
		t.Fatal(err)
	}
	old := f.write(t, "old", "doc:plan#viewer@user:alice")
	f.write(t, "new", "doc:plan#viewer@user:bob")
	time.Sleep(10 * time.Millisecond)
	if err := engine.CollectGarbage(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	stream, err := f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "alice"}},
		From: &pb.AccessDiffRequest_FromZookie{FromZookie: old}})
	if err == nil {
		err = stream.RecvMsg(new(pb.AccessDiffResponse))
	}
	wantCode(t, "diff from a collected zookie", err, codes.FailedPrecondition, "from_zookie: ", "garbage-collected")
}

// TestAccessOverHTTP: each method answers over HTTP/JSON, one message
// per line, and the zookie header and truncation trailer stay off the
// wire of a complete answer.
func TestAccessOverHTTP(t *testing.T) {
	f := newAccessFixture(t, nil)
	for _, c := range []struct{ path, body, want string }{
		{"/v1/access/who", `{"resource":{"type":"doc","id":"plan"},"permissions":["view"]}`, `"id":"dana"`},
		{"/v1/access/what", `{"subject":{"object":{"type":"user","id":"dana"}},"resourceTypes":["doc"]}`, `"HOLDING_GROUP"`},
		{"/v1/access/expiring", `{"within":"604800s"}`, `"relationship":`},
		{"/v1/access/diff", fmt.Sprintf(`{"subject":{"object":{"type":"user","id":"dana"}},"fromZookie":{"token":%q}}`, f.before.GetToken()), `"CHANGE_GAINED"`},
	} {
		code, body := post(t, f.srv, c.path, testSecret, strings.NewReader(c.body), -1)
		if code != http.StatusOK || !strings.Contains(body, c.want) {
			t.Errorf("POST %s: %d %s", c.path, code, body)
		}
	}
	code, body := post(t, f.srv, "/v1/access/expiring", testSecret, strings.NewReader(`{"within":"0s"}`), -1)
	if code != http.StatusBadRequest || !strings.Contains(body, "within: required") {
		t.Errorf("POST /v1/access/expiring within 0: %d %s", code, body)
	}
}

// TestExpiringTruncatedTrailer: an answer a bound cut says so in the
// stream's trailer; a complete one has no such trailer.
func TestExpiringTruncatedTrailer(t *testing.T) {
	f := newAccessFixture(t, nil)
	stream, err := f.access.ExpiringAccess(context.Background(), &pb.ExpiringAccessRequest{Within: durationpb.New(7 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recv[*pb.ExpiringAccessResponse](stream); err != nil {
		t.Fatal(err)
	}
	if v := stream.Trailer().Get(TruncatedTrailer); len(v) > 0 {
		t.Errorf("complete answer with trailer %q", v)
	}
	var _ metadata.MD
}

// TestAccessDiffWithoutAuditLog: a time needs the audit log to find its
// revision; without it the diff is FAILED_PRECONDITION naming the field,
// and zookies still work.
func TestAccessDiffWithoutAuditLog(t *testing.T) {
	f := newAccessFixture(t, func(c *Config) { c.DisableAudit = true })
	ctx := context.Background()
	dana := &pb.SubjectRef{Object: &pb.ObjectRef{Type: "user", Id: "dana"}}
	stream, err := f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana,
		From: &pb.AccessDiffRequest_FromTime{FromTime: timestamppb.New(time.Now().Add(-time.Minute))}})
	if err == nil {
		err = stream.RecvMsg(new(pb.AccessDiffResponse))
	}
	wantCode(t, "diff from a time without the audit log", err, codes.FailedPrecondition, "from_time: ", "audit log")
	stream, err = f.access.AccessDiff(ctx, &pb.AccessDiffRequest{Subject: dana, From: &pb.AccessDiffRequest_FromZookie{FromZookie: f.before}})
	ends := f.expires.Format(time.RFC3339)
	wantLines(t, "dana since the schema, without the audit log", diffLines(t, stream, err), []string{
		"+doc:plan#view@user:dana [group] ends " + ends +
			" | written doc:plan#viewer@group:eng#member | written group:eng#member@user:dana[expiration:" + ends + "]",
		"+doc:pub#view@user:dana [wildcard] | written doc:pub#viewer@user:*",
		"+group:eng#member@user:dana [direct] ends " + ends + " | written group:eng#member@user:dana[expiration:" + ends + "]",
	})
}
