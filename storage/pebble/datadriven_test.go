package pebble

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pdb "github.com/cockroachdb/pebble/v2"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/golden"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/auditlog"
)

// TestLayout drives an engine with writes, deletes, schema writes and
// garbage collection, and dumps the raw keys: the golden file documents the
// key layout and proves what GC removes.
func TestLayout(t *testing.T) {
	for _, path := range golden.Glob(t, "testdata/*.txt") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			e := openTest(t, Options{InMemory: true, noAuditIndexer: true}) // dump indexes, so batches are the same every run
			ctx := context.Background()
			golden.RunFile(t, path, func(t *testing.T, c *golden.Case) string {
				input := c.InputLines()
				switch c.Command {
				case "touch", "create", "delete":
					op := map[string]storage.Op{"touch": storage.OpTouch, "create": storage.OpCreate, "delete": storage.OpDelete}[c.Command]
					var muts []storage.Mutation
					for _, l := range input {
						r, err := graph.ParseRelationship(l)
						if err != nil {
							return "error: " + err.Error()
						}
						muts = append(muts, storage.Mutation{Op: op, Relationship: r})
					}
					rev, err := e.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: metadata(c.Args)})
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("revision %d", rev)
				case "touch-if-absent":
					// touch-if-absent <type:id> <relation> <subject type> <subject id>:
					// the input is written only if no such relationship exists.
					obj, _ := graph.ParseObjectRef(c.Args[0])
					f := storage.Filter{ResourceType: obj.Type, ResourceIDs: []string{obj.ID}, Relation: c.Args[1],
						Subject: &storage.SubjectFilter{Type: c.Args[2], IDs: []string{c.Args[3]}, Relation: new(string)}}
					r, err := graph.ParseRelationship(input[0])
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
					rev, err := e.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: c.Input}, Metadata: storage.WriteMetadata{}})
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("revision %d", rev)
				case "trim-audit":
					// Everything committed is older than the retention ten years on.
					n, err := e.TrimAudit(ctx, time.Now().Add(10*365*24*time.Hour))
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("removed %d", n)
				case "gc":
					// Everything committed is older than the window ten years on.
					if err := e.CollectGarbage(ctx, time.Now().Add(10*365*24*time.Hour)); err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("floor %d", e.floor.Load())
				case "read":
					rev, _ := strconv.Atoi(strings.TrimPrefix(c.Args[0], "rev="))
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
					r, err := graph.ParseRelationship(input[0])
					if err != nil {
						return "error: " + err.Error()
					}
					return fmt.Sprintf("forward %q\nreverse %q", forward.appendBody(nil, &r), reverse.appendBody(nil, &r))
				}
				t.Fatalf("%s: unknown command %q", c.Pos, c.Command)
				return ""
			})
		})
	}
}

// metadata reads a write's arguments: key=value labels, the rest the actor.
func metadata(args []string) storage.WriteMetadata {
	var m storage.WriteMetadata
	var actor []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			m.Labels = append(m.Labels, storage.Label{Key: k, Value: v})
		} else {
			actor = append(actor, a)
		}
	}
	m.Actor = strings.Join(actor, " ")
	return m
}

// dump renders every key in the store, one a line, once the audit
// indexer has caught up (so the layout does not depend on its timing).
func dump(t *testing.T, e *Engine) string {
	if err := e.IndexAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
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
			rr, err := decodeRevisionRecord(v)
			if err != nil {
				t.Fatalf("value of %q: %v", k, err)
			}
			fmt.Fprintf(w, "v %d actor=%q schema=%v", beUint64(k[1:]), rr.meta.Actor, rr.schemaChanged)
			for _, l := range rr.meta.Labels {
				fmt.Fprintf(w, " %s=%s", l.Key, l.Value)
			}
			fmt.Fprintln(w)
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
		case spaceAudit:
			dumpAudit(t, w, k, v)
		case spaceMeta:
			fmt.Fprintf(w, "m %s %d\n", k[1:], beUint64(v))
		default:
			fmt.Fprintf(w, "? %q\n", k)
		}
	}
	w.Flush()
	return b.String()
}

// dumpAudit renders an audit entry (without its times and hashes, which
// change from run to run) or index term key.
func dumpAudit(t *testing.T, w io.Writer, k, v []byte) {
	switch {
	case len(k) == 2+8 && k[1] == auditEntry:
		en, err := auditlog.Decode(v)
		if err != nil || !auditlog.Intact(v) || en.Revision != storage.Revision(beUint64(k[2:])) {
			t.Fatalf("audit entry %q: %v", k, err)
		}
		fmt.Fprintf(w, "a e %d %s actor=%q changes=%d schema=%d\n", en.Revision, en.Kind, en.Metadata.Actor, len(en.Changes), len(en.Schema))
	case len(k) > 2+8 && k[1] == auditTerm:
		term, rest, err := nextComponent(k[2:])
		if err != nil || len(rest) != 8 {
			t.Fatalf("audit term key %q: %v", k, err)
		}
		list, err := auditlog.DecodePostingList(nil, storage.Revision(beUint64(rest)), v)
		if err != nil {
			t.Fatalf("audit term key %q: %v", k, err)
		}
		fmt.Fprintf(w, "a t %q %d %v\n", term, beUint64(rest), list)
	default:
		t.Fatalf("audit key %q: %v", k, errCorrupt)
	}
}
