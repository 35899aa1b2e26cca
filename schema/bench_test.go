package schema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pembadb/pemba/internal/cputime"
)

// generatedSchema returns a schema of n definitions shaped like real ones:
// each has a parent of the previous type, owners, viewers through groups,
// a caveated relation and permissions with unions, arrows and exclusions.
func generatedSchema(n int) string {
	var b strings.Builder
	b.WriteString("use expiration\n\ndefinition user {}\n\ndefinition group {\n\trelation member: user | group#member\n}\n\n")
	b.WriteString("caveat ip_allowlist(ip ipaddress, cidrs list<string>) {\n\tcidrs.exists(c, ip.in_cidr(c))\n}\n\n")
	for i := 0; i < n; i++ {
		parent := "group"
		if i > 0 {
			parent = fmt.Sprintf("res%d", i-1)
		}
		fmt.Fprintf(&b, "/** Resource type %d. */\ndefinition res%d {\n", i, i)
		fmt.Fprintf(&b, "\trelation parent: %s\n", parent)
		b.WriteString("\trelation owner: user\n")
		b.WriteString("\trelation editor: user | group#member with ip_allowlist\n")
		b.WriteString("\trelation viewer: user | user:* | group#member | user with expiration\n")
		b.WriteString("\trelation banned: user\n")
		b.WriteString("\tpermission edit = owner + editor\n")
		if i > 0 {
			b.WriteString("\tpermission view = (viewer + edit + parent->view) - banned\n")
		} else {
			b.WriteString("\tpermission view = (viewer + edit + parent->member) - banned\n")
		}
		b.WriteString("}\n\n")
	}
	return b.String()
}

func BenchmarkCompile1000Definitions(b *testing.B) {
	src := generatedSchema(1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	start := cputime.Process()
	for b.Loop() {
		if _, err := Compile("bench.zed", src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cputime.Process()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// BenchmarkCompileAndReach1000Definitions adds building the reachability
// graph, which Compile leaves to the first Reachability call.
func BenchmarkCompileAndReach1000Definitions(b *testing.B) {
	src := generatedSchema(1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	start := cputime.Process()
	for b.Loop() {
		s, err := Compile("bench.zed", src)
		if err != nil {
			b.Fatal(err)
		}
		s.Reachability()
	}
	b.ReportMetric(float64(cputime.Process()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func BenchmarkParse1000Definitions(b *testing.B) {
	src := generatedSchema(1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	start := cputime.Process()
	for b.Loop() {
		if _, err := Parse("bench.zed", src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cputime.Process()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func BenchmarkCaveatEvaluate(b *testing.B) {
	s, err := Compile("bench.zed", generatedSchema(1))
	if err != nil {
		b.Fatal(err)
	}
	cv := s.Caveat("ip_allowlist")
	ctx := map[string]any{"ip": "10.1.2.3", "cidrs": []any{"192.168.0.0/16", "10.0.0.0/8"}}
	b.ReportAllocs()
	for b.Loop() {
		if out, err := cv.Evaluate(ctx); err != nil || !out.Satisfied {
			b.Fatal(out, err)
		}
	}
}

// TestGeneratedSchemaCompiles keeps the benchmark input valid.
func TestGeneratedSchemaCompiles(t *testing.T) {
	s, err := Compile("bench.zed", generatedSchema(20))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.DefinitionOrder); got != 22 {
		t.Fatalf("%d definitions, want 22", got)
	}
}
