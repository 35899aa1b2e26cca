package check

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/internal/golden"
	"github.com/pembadb/pemba/schema"
)

// TestGolden runs the cases of testdata/*.txt (see internal/golden for
// the format), each file against a fresh world.
func TestGolden(t *testing.T) {
	for _, path := range golden.Glob(t, "testdata/*.txt") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			w := newWorld(t)
			golden.RunFile(t, path, func(_ *testing.T, c *golden.Case) string { return w.run(c) })
		})
	}
}

// goldenNow is the default request instant of golden tests.
var goldenNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// world is the schema and relationships of a golden file, evaluated by an
// engine with the cache and one without; every answer must agree.
type world struct {
	t       *testing.T
	schema  *schema.Schema
	store   *testStore
	cached  *Engine
	nocache *Engine
}

func newWorld(t *testing.T) *world {
	return &world{t: t, store: newTestStore(t),
		cached:  New(Config{MaxDepth: 50}),
		nocache: New(Config{MaxDepth: 50, CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true})}
}

func (w *world) snap() Snapshot {
	return Snapshot{Schema: w.schema, Reader: w.store.reader(w.t)}
}

// options parses key=value arguments.
func options(args []string) (map[string]string, error) {
	o := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("argument %q is not key=value", a)
		}
		o[k] = v
	}
	return o, nil
}

func (w *world) run(c *golden.Case) string {
	out, err := w.runErr(c)
	if err != nil {
		return "error: " + err.Error()
	}
	return out
}

func (w *world) runErr(c *golden.Case) (string, error) {
	switch c.Command {
	case "schema":
		s, err := schema.Compile("schema.zed", c.Input)
		if err != nil {
			return "", err
		}
		w.schema = s
		w.cached = New(Config{MaxDepth: w.cached.cfg.MaxDepth})
		w.nocache = New(Config{MaxDepth: w.nocache.cfg.MaxDepth, CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true})
		return "ok", nil
	case "max-depth":
		var d int
		fmt.Sscan(c.Args[0], &d)
		w.cached = New(Config{MaxDepth: d})
		w.nocache = New(Config{MaxDepth: d, CacheEntries: -1, ReadCacheBytes: -1, DisableSingleflight: true})
		return "ok", nil
	case "relationships":
		var rels []graph.Relationship
		for _, l := range strings.Split(c.Input, "\n") {
			if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "//") {
				continue
			}
			r, err := graph.ParseRelationship(l)
			if err != nil {
				return "", err
			}
			rels = append(rels, r)
		}
		w.store.write(w.t, rels)
		return fmt.Sprintf("ok: %d relationships", len(rels)), nil
	case "check", "explain", "trace":
		if len(c.Args) == 0 {
			return "", fmt.Errorf("usage: %s resource#permission@subject [context=JSON] [now=RFC3339]", c.Command)
		}
		req, err := parseCheck(c.Args[0], c.Args[1:])
		if err != nil {
			return "", err
		}
		req.Explain = c.Command != "check"
		if c.Command == "trace" {
			return w.trace(req)
		}
		return w.check(req)
	case "bulk":
		// One check a line; blank lines are skipped, and names[i] is the
		// query of reqs[i].
		var reqs []Request
		var names []string
		for _, l := range strings.Split(c.Input, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			r, err := parseCheck(f[0], f[1:])
			if err != nil {
				return "", err
			}
			reqs = append(reqs, r)
			names = append(names, f[0])
		}
		res, err := w.cached.BulkCheck(context.Background(), w.snap(), reqs)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for i, r := range res {
			fmt.Fprintf(&b, "%s: ", names[i])
			if r.Err != nil {
				fmt.Fprintf(&b, "error: %v\n", r.Err)
				continue
			}
			b.WriteString(resultLine(r.Result) + "\n")
			// Every bulk item agrees with a single check.
			single, err := w.nocache.Check(context.Background(), w.snap(), reqs[i])
			if err != nil || resultLine(single) != resultLine(r.Result) {
				w.t.Errorf("bulk item %d: %s, single check: %s %v", i, resultLine(r.Result), resultLine(single), err)
			}
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	case "expand":
		rel, err := graph.ParseRelationship(c.Args[0] + "@user:x")
		if err != nil {
			return "", err
		}
		o, err := options(c.Args[1:])
		if err != nil {
			return "", err
		}
		now, err := optNow(o)
		if err != nil {
			return "", err
		}
		n, err := w.cached.Expand(context.Background(), w.snap(), ExpandRequest{Resource: rel.Resource, Permission: rel.Relation, Now: now})
		if err != nil {
			return "", err
		}
		return n.String(), nil
	case "lookup-resources":
		return w.lookupResources(c.Args)
	case "lookup-subjects":
		return w.lookupSubjects(c.Args)
	}
	return "", fmt.Errorf("unknown command %q", c.Command)
}

func optNow(o map[string]string) (time.Time, error) {
	if v, ok := o["now"]; ok {
		return time.Parse(time.RFC3339, v)
	}
	return goldenNow, nil
}

func optContext(o map[string]string) (map[string]any, error) {
	var c map[string]any
	if v, ok := o["context"]; ok {
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			return nil, fmt.Errorf("context: %w", err)
		}
	}
	return c, nil
}

// lookupResources runs `lookup-resources type#perm@subject [limit=N]
// [context=JSON] [now=T]`; with a limit it pages through every result with
// cursors. Every result must agree with Check, and every resource Check
// grants among those mentioned must be listed.
func (w *world) lookupResources(args []string) (string, error) {
	left, subj, ok := strings.Cut(args[0], "@")
	typ, perm, ok2 := strings.Cut(left, "#")
	if !ok || !ok2 {
		return "", fmt.Errorf("usage: lookup-resources type#permission@subject")
	}
	sub, err := graph.ParseSubjectRef(subj)
	if err != nil {
		return "", err
	}
	o, err := options(args[1:])
	if err != nil {
		return "", err
	}
	req := LookupResourcesRequest{ResourceType: typ, Permission: perm, Subject: sub}
	if req.Now, err = optNow(o); err != nil {
		return "", err
	}
	if req.Context, err = optContext(o); err != nil {
		return "", err
	}
	fmt.Sscan(o["limit"], &req.Limit)
	var b strings.Builder
	page := 0
	for {
		n := 0
		last := ""
		err := w.cached.LookupResources(context.Background(), w.snap(), req, func(r ResourceResult) bool {
			n++
			last = r.Cursor
			line := typ + ":" + r.ID + " " + r.Permissionship.String()
			if len(r.Missing) > 0 {
				line += " missing " + strings.Join(r.Missing, ", ")
			}
			if req.Limit > 0 {
				line = fmt.Sprintf("page %d: %s", page, line)
			}
			b.WriteString(line + "\n")
			return true
		})
		if err != nil {
			return "", err
		}
		if req.Limit == 0 || n < req.Limit {
			break
		}
		req.Cursor = last
		page++
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// lookupSubjects runs `lookup-subjects resource#perm@type[#relation]
// [context=JSON] [now=T]`.
func (w *world) lookupSubjects(args []string) (string, error) {
	left, subj, ok := strings.Cut(args[0], "@")
	if !ok {
		return "", fmt.Errorf("usage: lookup-subjects resource#permission@type[#relation]")
	}
	rel, err := graph.ParseRelationship(left + "@user:x")
	if err != nil {
		return "", err
	}
	st, srel, _ := strings.Cut(subj, "#")
	o, err := options(args[1:])
	if err != nil {
		return "", err
	}
	req := LookupSubjectsRequest{Resource: rel.Resource, Permission: rel.Relation, SubjectType: st, SubjectRelation: srel}
	if req.Now, err = optNow(o); err != nil {
		return "", err
	}
	if req.Context, err = optContext(o); err != nil {
		return "", err
	}
	var b strings.Builder
	err = w.cached.LookupSubjects(context.Background(), w.snap(), req, func(r SubjectResult) bool {
		b.WriteString(r.Subject.String() + " " + r.Permissionship.String())
		if len(r.Missing) > 0 {
			b.WriteString(" missing " + strings.Join(r.Missing, ", "))
		}
		if len(r.Excluded) > 0 {
			var ex []string
			for _, x := range r.Excluded {
				ex = append(ex, x.String())
			}
			b.WriteString(" except " + strings.Join(ex, ", "))
		}
		b.WriteString("\n")
		return true
	})
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func parseCheck(q string, args []string) (Request, error) {
	rel, err := graph.ParseRelationship(q)
	if err != nil {
		return Request{}, err
	}
	req := Request{Resource: rel.Resource, Permission: rel.Relation, Subject: rel.Subject, Now: goldenNow}
	o, err := options(args)
	if err != nil {
		return req, err
	}
	if v, ok := o["context"]; ok {
		if err := json.Unmarshal([]byte(v), &req.Context); err != nil {
			return req, fmt.Errorf("context: %w", err)
		}
	}
	if v, ok := o["now"]; ok {
		if req.Now, err = time.Parse(time.RFC3339, v); err != nil {
			return req, err
		}
	}
	return req, nil
}

func resultLine(r Result) string {
	s := r.Permissionship.String()
	if len(r.Missing) > 0 {
		s += " missing " + strings.Join(r.Missing, ", ")
	}
	return s
}

// check runs req on both engines (twice on the cached one, so the second
// answer comes from the cache) and requires the same answer.
func (w *world) check(req Request) (string, error) {
	ctx := context.Background()
	var lines []string
	for i, e := range []*Engine{w.nocache, w.cached, w.cached} {
		r, err := e.Check(ctx, w.snap(), req)
		line := ""
		if err != nil {
			line = "error: " + err.Error()
		} else {
			line = resultLine(r)
			if req.Explain && r.Path != nil {
				line += "\n" + r.Path.String()
				if len(r.Path.Caveats) > 0 {
					line += "\ncaveats: " + strings.Join(r.Path.Caveats, ", ")
				}
				if err := w.verifyPath(r.Path, req.Now); err != nil {
					line += "\nINVALID PATH: " + err.Error()
				}
			}
			if req.Explain && r.Denial != nil {
				line += "\n" + r.Denial.String()
				if err := verifyDenial(ctx, engineAnswers(ctx, w.nocache, w.snap(), req), w.snap(), req, r.Denial); err != nil {
					line += "\nINVALID DENIAL: " + err.Error()
				}
			}
			if req.Explain && r.Permissionship == NoPermission && r.Denial == nil {
				line += "\nMISSING DENIAL"
			}
		}
		if i > 0 && line != lines[0] {
			w.t.Errorf("%v: engine %d answered %q, the uncached engine %q", req, i, line, lines[0])
		}
		lines = append(lines, line)
	}
	return lines[0], nil
}

// trace runs an explained check and prints its result and NewTrace.
func (w *world) trace(req Request) (string, error) {
	r, err := w.nocache.Check(context.Background(), w.snap(), req)
	if err != nil {
		return "", err
	}
	return resultLine(r) + "\n" + NewTrace(w.schema, r).String(), nil
}

// verifyPath checks that every relationship on a path exists.
func (w *world) verifyPath(p *Path, now time.Time) error { return w.store.verifyPath(p, now) }

// verifyPath checks that every relationship on a path exists.
func (w *testStore) verifyPath(p *Path, now time.Time) error {
	for _, s := range p.Steps {
		if s.Relationship == nil {
			continue
		}
		if !w.exists(*s.Relationship, now) {
			return fmt.Errorf("relationship %s does not exist", s.Relationship)
		}
	}
	for _, a := range p.Also {
		if err := w.verifyPath(a, now); err != nil {
			return err
		}
	}
	if !slices.IsSorted(p.Caveats) {
		return fmt.Errorf("caveats not sorted")
	}
	return nil
}
