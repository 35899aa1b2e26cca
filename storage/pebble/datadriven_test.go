package pebble

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt")

// testCase is one `command args` / input / `----` / expected output block.
type testCase struct {
	line     int
	command  string
	args     []string
	input    []string
	expected string
}

// parseCases reads a golden file. Cases are separated by blank lines;
// lines starting with # outside a case are comments.
func parseCases(t *testing.T, path string) ([]testCase, [][]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var cases []testCase
	var preamble [][]string // blank and comment lines before each case, kept on rewrite
	for i := 0; i < len(lines); {
		var comments []string
		for i < len(lines) && (lines[i] == "" || strings.HasPrefix(lines[i], "#")) {
			comments = append(comments, lines[i])
			i++
		}
		if i >= len(lines) {
			preamble = append(preamble, comments)
			break
		}
		fields := strings.Fields(lines[i])
		c := testCase{line: i + 1, command: fields[0], args: fields[1:]}
		i++
		for i < len(lines) && lines[i] != "----" {
			c.input = append(c.input, lines[i])
			i++
		}
		i++ // ----
		var out []string
		for i < len(lines) && lines[i] != "" {
			out = append(out, lines[i])
			i++
		}
		c.expected = strings.Join(out, "\n")
		cases = append(cases, c)
		preamble = append(preamble, comments)
	}
	return cases, preamble
}

// runGolden runs every case of a file through run, comparing or, with
// -rewrite, regenerating the expected output.
func runGolden(t *testing.T, path string, run func(c *testCase) string) {
	cases, preamble := parseCases(t, path)
	var b strings.Builder
	for i, c := range cases {
		got := strings.TrimRight(run(&c), "\n")
		if !*rewrite && got != c.expected {
			t.Errorf("%s:%d: %s %s:\n got:\n%s\n want:\n%s", path, c.line, c.command, strings.Join(c.args, " "), got, c.expected)
		}
		for _, l := range preamble[i] {
			b.WriteString(l + "\n")
		}
		b.WriteString(strings.Join(append([]string{c.command}, c.args...), " ") + "\n")
		for _, l := range c.input {
			b.WriteString(l + "\n")
		}
		b.WriteString("----\n" + got + "\n")
	}
	if len(preamble) > len(cases) {
		for _, l := range preamble[len(cases)] {
			b.WriteString(l + "\n")
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLayout drives an engine with writes, deletes, schema writes and
// garbage collection, and dumps the raw keys: the golden file documents the
// key layout and proves what GC removes.
func TestLayout(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			e := openTest(t, Options{InMemory: true})
			ctx := context.Background()
			runGolden(t, path, func(c *testCase) string {
				switch c.command {
				case "touch", "create", "delete":
					op := map[string]storage.Op{"touch": storage.OpTouch, "create": storage.OpCreate, "delete": storage.OpDelete}[c.command]
					var muts []storage.Mutation
					for _, l := range c.input {
						r, err := graph.ParseRelationship(l)
						if err != nil {
							return "error: " + err.Error()
						}
						muts = append(muts, storage.Mutation{Op: op, Relationship: r})
					}
					rev, err := e.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: storage.WriteMetadata{Actor: strings.Join(c.args, " ")}})
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("revision %d", rev)
				case "touch-if-absent":
					// touch-if-absent <type:id> <relation> <subject type> <subject id>:
					// the input is written only if no such relationship exists.
					obj, _ := graph.ParseObjectRef(c.args[0])
					f := storage.Filter{ResourceType: obj.Type, ResourceIDs: []string{obj.ID}, Relation: c.args[1],
						Subject: &storage.SubjectFilter{Type: c.args[2], IDs: []string{c.args[3]}, Relation: new(string)}}
					r, err := graph.ParseRelationship(c.input[0])
					if err != nil {
						return "error: " + err.Error()
					}
					rev, err := e.Write(ctx, storage.WriteRequest{
						Preconditions: []storage.Precondition{{MustMatch: false, Filter: f}},
						Mutations:     []storage.Mutation{{Op: storage.OpTouch, Relationship: r}},
					})
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("revision %d", rev)
				case "schema":
					rev, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: strings.Join(c.input, "\n")}, Metadata: storage.WriteMetadata{}})
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("revision %d", rev)
				case "gc":
					// Everything committed is older than the window ten years on.
					if err := e.CollectGarbage(ctx, time.Now().Add(10*365*24*time.Hour)); err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("floor %d", e.floor.Load())
				case "read":
					rev, _ := strconv.Atoi(strings.TrimPrefix(c.args[0], "rev="))
					rd, err := e.SnapshotReader(ctx, storage.Revision(rev))
					if err != nil {
						return "error: " + err.Error()
					}
					var out []string
					for r, err := range rd.QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{}) {
						if err != nil {
							return "error: " + err.Error()
						}
						out = append(out, r.String())
					}
					return strings.Join(out, "\n")
				case "dump":
					return dump(t, e)
				case "key":
					r, err := graph.ParseRelationship(c.input[0])
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("forward %q\nreverse %q", forward.appendBody(nil, &r), reverse.appendBody(nil, &r))
				}
				t.Fatalf("%d: unknown command %q", c.line, c.command)
				return ""
			})
		})
	}
}

// dump renders every key in the store, one a line.
func dump(t *testing.T, e *Engine) string {
	it, err := e.db.NewIter(&pdb.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var b strings.Builder
	w := bufio.NewWriter(&b)
	for valid := it.First(); valid; valid = it.Next() {
		k, v := it.Key(), it.Value()
		switch k[0] {
		case spaceForward, spaceReverse:
			body, rev, _ := splitVersion(k)
			var comps [6][]byte
			if err := splitBody(body, &comps); err != nil {
				t.Fatalf("key %q: %v", k, err)
			}
			fmt.Fprintf(w, "%c", k[0])
			for _, c := range comps {
				fmt.Fprintf(w, " %q", c)
			}
			pl, err := decodePayload(v)
			if err != nil {
				t.Fatalf("value of %q: %v", k, err)
			}
			state := "live"
			if pl.tombstone {
				state = "tombstone"
			}
			if pl.hasCaveat {
				state += fmt.Sprintf(" caveat=%s%s", pl.caveatName, pl.caveatCtx)
			}
			if !pl.expiration.IsZero() {
				state += " expires=" + pl.expiration.Format(time.RFC3339)
			}
			fmt.Fprintf(w, " @%d %s\n", rev, state)
		case spaceSchema:
			s, _ := decodeSchema(v, descRevision(k[1:]))
			fmt.Fprintf(w, "s @%d %q\n", s.Revision, s.Text)
		case spaceRevision:
			rr, _ := decodeRevisionRecord(v)
			fmt.Fprintf(w, "v %d actor=%q schema=%v\n", beUint64(k[1:]), rr.meta.Actor, rr.schemaChanged)
		case spaceChanges:
			n := 0
			_ = decodeChanges(v, func(storage.Op, []byte, []byte) error { n++; return nil })
			fmt.Fprintf(w, "w %d changes=%d\n", beUint64(k[1:]), n)
		case spaceExpiry:
			sec := int64(beUint64(k[1:]) ^ (1 << 63))
			body, rev, _ := splitVersion(k[13:])
			var comps [6][]byte
			if err := splitBody(body, &comps); err != nil {
				t.Fatalf("key %q: %v", k, err)
			}
			fmt.Fprintf(w, "x %s %q @%d\n", time.Unix(sec, 0).UTC().Format(time.RFC3339), comps, rev)
		case spaceMeta:
			fmt.Fprintf(w, "m %s %d\n", k[1:], beUint64(v))
		default:
			fmt.Fprintf(w, "? %q\n", k)
		}
	}
	w.Flush()
	return b.String()
}
