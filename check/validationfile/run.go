package validationfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pembadb/pemba/check"
	"github.com/pembadb/pemba/expand"
	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/schema"
	"github.com/pembadb/pemba/storage"
	"github.com/pembadb/pemba/storage/pebble"
)

// Failure is one failed check of a document.
type Failure struct {
	Path string
	Line int
	// Message is the one-line verdict, e.g.
	// `assertTrue document:1#view@user:tom failed: NO_PERMISSION`.
	Message string
	// Explanation is the access path, Expand tree or set difference that
	// explains the failure; it may span lines.
	Explanation string
}

func (f Failure) String() string {
	s := fmt.Sprintf("%s:%d: %s", f.Path, f.Line, f.Message)
	if f.Explanation != "" {
		s += "\n" + indent(f.Explanation, "    ")
	}
	return s
}

// Report is the outcome of one document.
type Report struct {
	Relationships int
	Assertions    int
	Expectations  int
	Failures      []Failure
}

// Passed reports whether the document had no failures.
func (r *Report) Passed() bool { return len(r.Failures) == 0 }

// Run loads the document into a fresh in-memory datastore and evaluates
// every assertion and expectation at one instant. Schema errors are returned
// as a *schema.ErrorList positioned in the validation file; relationships
// the schema rejects are failures.
func Run(ctx context.Context, d *Document) (*Report, error) {
	sch, err := d.compile()
	if err != nil {
		return nil, err
	}
	engine, err := pebble.Open(pebble.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		return nil, fmt.Errorf("open in-memory datastore: %w", err)
	}
	defer engine.Close()

	rep := &Report{Relationships: len(d.Relationships), Assertions: len(d.Assertions), Expectations: len(d.Expectations)}
	if _, err := engine.WriteSchema(ctx, storage.SchemaWrite{Schema: storage.StoredSchema{Text: d.Schema}, Metadata: storage.WriteMetadata{Actor: "validate"}}); err != nil {
		return nil, fmt.Errorf("write schema: %w", err)
	}
	if err := d.load(ctx, engine, sch, rep); err != nil {
		return nil, err
	}
	head, err := engine.HeadRevision(ctx)
	if err != nil {
		return nil, err
	}
	reader, err := engine.SnapshotReader(ctx, head)
	if err != nil {
		return nil, err
	}
	r := runner{
		ctx:    ctx,
		path:   d.Path,
		snap:   check.Snapshot{Schema: sch, Reader: reader},
		engine: check.New(check.Config{CacheEntries: -1}),
		now:    time.Now(),
		report: rep,
	}
	for _, a := range d.Assertions {
		r.assert(a)
	}
	for _, e := range d.Expectations {
		r.expect(e)
	}
	return rep, nil
}

// compile compiles the schema, positioning errors of an inline schema at
// their lines in the validation file.
func (d *Document) compile() (*schema.Schema, error) {
	sch, err := schema.Compile(d.SchemaPath, d.Schema)
	if err == nil {
		return sch, nil
	}
	var list *schema.ErrorList
	if d.SchemaLine > 0 && errors.As(err, &list) {
		for _, e := range *list {
			e.Pos.Line += d.SchemaLine - 1
			e.Pos.Column += d.SchemaIndent
		}
	}
	return nil, err
}

// load writes the relationships, one failure per relationship the schema
// rejects, in batches that stay under the datastore's write limits.
func (d *Document) load(ctx context.Context, engine storage.Engine, sch *schema.Schema, rep *Report) error {
	const batch = 1000
	var muts []storage.Mutation
	flush := func() error {
		if len(muts) == 0 {
			return nil
		}
		_, err := engine.Write(ctx, storage.WriteRequest{Mutations: muts, Metadata: storage.WriteMetadata{Actor: "validate"}})
		muts = muts[:0]
		if err != nil {
			return fmt.Errorf("write relationships: %w", err)
		}
		return nil
	}
	for _, l := range d.Relationships {
		if err := sch.ValidateRelationship(l.Value); err != nil {
			rep.Failures = append(rep.Failures, Failure{Path: d.Path, Line: l.Line, Message: fmt.Sprintf("relationship %s: %v", l.Value, err)})
			continue
		}
		muts = append(muts, storage.Mutation{Op: storage.OpTouch, Relationship: l.Value})
		if len(muts) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// runner evaluates assertions and expectations against one snapshot.
type runner struct {
	ctx    context.Context
	path   string
	snap   check.Snapshot
	engine *check.Engine
	now    time.Time
	report *Report
}

func (r *runner) fail(line int, msg, explanation string) {
	r.report.Failures = append(r.report.Failures, Failure{Path: r.path, Line: line, Message: msg, Explanation: explanation})
}

func (r *runner) assert(a Assertion) {
	res, err := r.engine.Check(r.ctx, r.snap, check.Request{
		Resource: a.Resource, Permission: a.Permission, Subject: a.Subject,
		Context: a.Context, Now: r.now, Explain: true,
	})
	if err != nil {
		r.fail(a.Line, fmt.Sprintf("%s %s: %v", a.Kind, a.Text, err), "")
		return
	}
	want := map[AssertionKind]check.Permissionship{
		AssertTrue: check.HasPermission, AssertFalse: check.NoPermission, AssertCaveated: check.Conditional,
	}[a.Kind]
	if res.Permissionship == want {
		return
	}
	msg := fmt.Sprintf("%s %s failed: %s", a.Kind, a.Text, res.Permissionship)
	if len(res.Missing) > 0 {
		msg += " (missing: " + strings.Join(res.Missing, ", ") + ")"
	}
	var explanation string
	if res.Path != nil {
		explanation = "access path: " + res.Path.String()
	} else if tree, err := r.expand(a.Resource, a.Permission); err == nil {
		explanation = "expand " + a.Resource.String() + "#" + a.Permission + ":\n" + tree.String()
	}
	r.fail(a.Line, msg, explanation)
}

func (r *runner) expand(res graph.ObjectRef, perm string) (*expand.Node, error) {
	return expand.Expand(r.ctx, r.snap.Schema, r.snap.Reader, res, perm, expand.Options{Now: r.now})
}

func (r *runner) expect(e Expectation) {
	key := e.Resource.String() + "#" + e.Permission
	got, tree, err := r.members(e.Resource, e.Permission)
	if err != nil {
		r.fail(e.Line, fmt.Sprintf("validation %s: %v", key, err), "")
		return
	}
	want := make(map[string]ExpectedSubject, len(e.Subjects))
	for _, s := range e.Subjects {
		want[s.Subject] = s
	}
	var diff []string
	for _, s := range e.Subjects {
		g, ok := got[s.Subject]
		switch {
		case !ok:
			r.fail(s.Line, fmt.Sprintf("validation %s: expected subject [%s] does not have the permission", key, s.Subject), "")
		case len(s.Via) > 0 && !sameSet(s.Via, g.via):
			r.fail(s.Line, fmt.Sprintf("validation %s: [%s] is %s, expected %s", key, s.Subject, formatVia(g.via), formatVia(s.Via)), "")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			diff = append(diff, fmt.Sprintf("[%s] is %s", name, formatVia(got[name].via)))
		}
	}
	if len(diff) > 0 {
		r.fail(e.Line, fmt.Sprintf("validation %s: %d subject(s) have the permission but are not listed", key, len(diff)),
			strings.Join(diff, "\n")+"\nexpand "+key+":\n"+tree.String())
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func formatVia(via []string) string {
	parts := make([]string, len(via))
	for i, v := range via {
		parts[i] = "<" + v + ">"
	}
	return strings.Join(parts, "/")
}

// jsonObject decodes a caveat context written as a JSON object, held to
// the depth limit of stored contexts (graph.MaxCaveatContextDepth).
func jsonObject(text string, into *map[string]any) error {
	if !strings.HasPrefix(text, "{") {
		return errors.New("must be a JSON object")
	}
	if err := json.Unmarshal([]byte(text), into); err != nil {
		return err
	}
	for k, v := range *into {
		if err := graph.ValidateContextDepth(k, v); err != nil {
			return err
		}
	}
	return nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
