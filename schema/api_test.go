package schema

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const apiSchema = `use expiration
definition user {}
definition group {
	relation member: user | group#member
}
definition folder {
	relation viewer: user | group#member
	permission view = viewer
}
definition document {
	relation parent: folder
	relation viewer: user | user:* | group#member | user with expiration
	relation editor: user with cavx
	permission view = viewer + editor + parent->view
}
caveat cavx(ip ipaddress, at timestamp, n int) { ip.in_cidr("10.0.0.0/8") && at > timestamp("2020-01-01T00:00:00Z") && n > 0 }
`

func mustCompileT(t *testing.T, src string) *Schema {
	t.Helper()
	s, err := Compile("api.zed", src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLookup(t *testing.T) {
	s := mustCompileT(t, apiSchema)
	doc := s.Definition("document")
	if doc == nil || s.Definition("nope") != nil {
		t.Fatal("Definition lookup wrong")
	}
	tests := []struct {
		name           string
		relation, perm bool
	}{
		{"viewer", true, false},
		{"view", false, true},
		{"missing", false, false},
	}
	for _, tc := range tests {
		r, p := doc.Lookup(tc.name)
		if (r != nil) != tc.relation || (p != nil) != tc.perm {
			t.Errorf("Lookup(%q) = %v, %v", tc.name, r, p)
		}
		if doc.IsPermission(tc.name) != tc.perm || doc.IsRelation(tc.name) != tc.relation || doc.Has(tc.name) != (tc.relation || tc.perm) {
			t.Errorf("IsPermission/IsRelation/Has(%q) disagree with Lookup", tc.name)
		}
	}
	viewer := doc.Relations["viewer"]
	if got := viewer.AllowedFor("user", "", false); len(got) != 2 {
		t.Errorf("AllowedFor(user) = %v, want plain user and user with expiration", got)
	}
	if got := viewer.AllowedFor("user", "", true); len(got) != 1 || !got[0].Wildcard {
		t.Errorf("AllowedFor(user:*) = %v", got)
	}
	if got := viewer.AllowedFor("group", "member", false); len(got) != 1 {
		t.Errorf("AllowedFor(group#member) = %v", got)
	}
	if got := viewer.AllowedFor("group", "", false); len(got) != 0 {
		t.Errorf("AllowedFor(group) = %v, want none", got)
	}
	if !s.HasFlag("expiration") || s.HasFlag("other") {
		t.Error("HasFlag wrong")
	}
	if s.Caveat("cavx") == nil || s.Caveat("nope") != nil {
		t.Error("Caveat lookup wrong")
	}
}

func TestErrorListIsTyped(t *testing.T) {
	_, err := Compile("bad.zed", "definition user {}\ndefinition doc {\n\trelation viewer: usr\n\tpermission view = viewr\n}\n")
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T is not an *ErrorList", err)
	}
	want := []Error{
		{File: "bad.zed", Pos: Position{3, 19}, Message: `unknown type "usr" in relation "viewer" on definition "doc"`, Suggestion: "user"},
		{File: "bad.zed", Pos: Position{4, 20}, Message: `relation or permission "viewr" not found on definition "doc"`, Suggestion: "viewer"},
	}
	if len(*list) != len(want) {
		t.Fatalf("got %d errors: %v", len(*list), err)
	}
	for i, e := range *list {
		if e.File != want[i].File || e.Pos != want[i].Pos || e.Message != want[i].Message || e.Suggestion != want[i].Suggestion {
			t.Errorf("error %d = %+v, want %+v", i, *e, want[i])
		}
	}
	if !strings.Contains(err.Error(), "bad.zed:4:20: relation or permission \"viewr\" not found on definition \"doc\" (did you mean \"viewer\"?)\n\t\tpermission view = viewr\n\t\t                  ^") {
		t.Errorf("Error() lacks the caret snippet:\n%s", err)
	}
}

func TestEvaluateGoValues(t *testing.T) {
	cv := mustCompileT(t, apiSchema).Caveat("cavx")
	tests := []struct {
		name    string
		ctx     map[string]any
		want    CaveatOutcome
		wantErr string
	}{
		{"native Go types", map[string]any{"ip": netip.MustParseAddr("10.0.0.1"), "at": time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), "n": int64(1)}, CaveatOutcome{Satisfied: true}, ""},
		{"JSON types", map[string]any{"ip": "10.0.0.1", "at": "2021-01-01T00:00:00Z", "n": 1.0}, CaveatOutcome{Satisfied: true}, ""},
		{"decided false without the rest", map[string]any{"ip": "11.0.0.1"}, CaveatOutcome{Satisfied: false}, ""},
		{"undecided", map[string]any{"ip": "10.0.0.1"}, CaveatOutcome{Missing: []string{"at", "n"}}, ""},
		{"wrong type", map[string]any{"ip": 10.0}, CaveatOutcome{}, `caveat "cavx": parameter "ip": expected ipaddress, got number`},
		{"int too large", map[string]any{"ip": "10.0.0.1", "n": 1e300}, CaveatOutcome{}, `parameter "n": expected int, got number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cv.Evaluate(tc.ctx)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Evaluate = %+v, %v; want %+v", got, err, tc.want)
			}
			if got.Decided() != (len(tc.want.Missing) == 0) {
				t.Fatal("Decided disagrees with Missing")
			}
		})
	}
}

func TestEvaluateConcurrently(t *testing.T) {
	cv := mustCompileT(t, apiSchema).Caveat("cavx")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				out, err := cv.Evaluate(map[string]any{"ip": "10.0.0.1", "at": "2021-01-01T00:00:00Z", "n": float64(i + j)})
				if err != nil || out.Satisfied != (i+j > 0) {
					errs <- errors.New("wrong result under concurrency")
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestReachabilityAPI(t *testing.T) {
	s := mustCompileT(t, apiSchema)
	r := s.Reachability()
	paths := r.Toward(Node{"document", "view"})
	for _, n := range []Node{{"user", ""}, {"group", "member"}, {"folder", "view"}, {"folder", "viewer"}, {"document", "viewer"}} {
		if !paths.Reaches(n) {
			t.Errorf("%s should reach document#view", n)
		}
	}
	if paths.Reaches(Node{"group", ""}) || paths.Reaches(Node{"document", "parent"}) {
		t.Error("plain groups and the parent relation do not grant document#view")
	}
	var kinds []string
	for _, e := range paths.Edges(Node{"user", ""}) {
		kinds = append(kinds, e.To.String()+":"+e.Kind.String())
	}
	want := []string{"document#editor:direct", "document#viewer:direct", "document#viewer:wildcard", "folder#viewer:direct", "group#member:direct"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("edges from user = %v, want %v", kinds, want)
	}
	if r.Toward(Node{"document", "view"}) != paths {
		t.Error("Toward is not memoized")
	}
	arrow := paths.Edges(Node{"folder", "view"})
	if len(arrow) != 1 || arrow[0].Kind != EdgeArrow || arrow[0].Tupleset != "parent" {
		t.Errorf("edges from folder#view = %v", arrow)
	}
}

func TestCompareAPI(t *testing.T) {
	old := mustCompileT(t, apiSchema)
	new := mustCompileT(t, strings.Replace(apiSchema, "relation viewer: user | user:* | group#member | user with expiration", "relation viewer: user | group#member", 1))
	d := Compare(old, new)
	if d.Empty() {
		t.Fatal("diff is empty")
	}
	got := d.RemovedAllowedSubjects()
	if len(got) != 2 || got[0].Relation != (Node{"document", "viewer"}) || !got[0].Subject.Wildcard || !got[1].Subject.Expiration {
		t.Errorf("RemovedAllowedSubjects = %+v", got)
	}
	if len(d.RemovedRelations()) != 0 {
		t.Errorf("RemovedRelations = %v", d.RemovedRelations())
	}
	if !Compare(old, old).Empty() {
		t.Error("a schema differs from itself")
	}
	all := Compare(old, nil).RemovedRelations()
	if len(all) != 5 {
		t.Errorf("removing everything removes %v", all)
	}
}

func TestCompileAST(t *testing.T) {
	ast, err := Parse("api.zed", apiSchema)
	if err != nil {
		t.Fatal(err)
	}
	fromAST, err := CompileAST(ast, apiSchema)
	if err != nil {
		t.Fatal(err)
	}
	if fromAST.String() != mustCompileT(t, apiSchema).String() {
		t.Error("CompileAST and Compile disagree")
	}
	bad, _ := Parse("bad.zed", "definition doc {\n\trelation viewer: usr\n}\n")
	_, err = CompileAST(bad, "")
	var list *ErrorList
	if !errors.As(err, &list) || len(*list) != 1 || (*list)[0].Pos != (Position{2, 19}) || (*list)[0].Snippet() != "" {
		t.Errorf("CompileAST without source: %v", err)
	}
}

func TestReachabilityConcurrently(t *testing.T) {
	s := mustCompileT(t, apiSchema)
	targets := []Node{{"document", "view"}, {"folder", "view"}, {"group", "member"}}
	var wg sync.WaitGroup
	got := make([][]string, 8)
	for i := range got {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for _, target := range targets {
				got[i] = append(got[i], s.Reachability().Toward(target).String())
			}
		}(i)
	}
	wg.Wait()
	for i := 1; i < len(got); i++ {
		if !reflect.DeepEqual(got[i], got[0]) {
			t.Fatalf("goroutine %d saw different paths", i)
		}
	}
	if s.Reachability() != s.Reachability() {
		t.Error("the reachability graph is rebuilt on every call")
	}
}
