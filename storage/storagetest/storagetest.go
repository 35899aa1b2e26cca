package storagetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pembadb/pemba/graph"
	"github.com/pembadb/pemba/storage"
)

// NewEngine returns a fresh, empty engine for one subtest.
type NewEngine func(t *testing.T) storage.Engine

// subtests lists the suite in the order it runs. Names are stable so an
// engine can skip one with -run or -skip.
var subtests = []struct {
	name string
	fn   func(t *testing.T, e storage.Engine)
}{
	{"EmptyStore", testEmptyStore},
	{"SnapshotIsolation", testSnapshotIsolation},
	{"RevisionMonotonicConcurrentWriters", testConcurrentWriters},
	{"Preconditions", testPreconditions},
	{"CreateConflict", testCreateConflict},
	{"DuplicateMutation", testDuplicateMutation},
	{"TouchReplacesPayload", testTouchReplaces},
	{"DeleteAbsent", testDeleteAbsent},
	{"DeleteRelationshipsLimit", testDeleteRelationshipsLimit},
	{"ForwardQueries", testForwardQueries},
	{"ReverseQueries", testReverseQueries},
	{"OrderingAndCursors", testCursors},
	{"IDOrdering", testIDOrdering},
	{"Expiration", testExpiration},
	{"CaveatContextRoundTrip", testCaveatRoundTrip},
	{"GarbageCollection", testGarbageCollection},
	{"RevisionUnknown", testRevisionUnknown},
	{"WatchConcurrentWriters", testWatchConcurrent},
	{"WatchChanges", testWatchChanges},
	{"WatchCancel", testWatchCancel},
	{"WatchAfterAuditTrim", testWatchAfterAuditTrim},
	{"WriteMetadata", testWriteMetadata},
	{"SchemaVersions", testSchemaVersions},
	{"ImportBatches", testImportBatches},
	{"ImportDuplicates", testImportDuplicates},
	{"ImportInvalid", testImportInvalid},
	{"ImportLarge", testImportLarge},
	{"ExportResume", testExportResume},
	{"SchemaGuard", testSchemaGuard},
	{"SchemaCheck", testSchemaCheck},
	{"WaitHonoursContext", testWaitHonoursContext},
	{"BadWrites", testBadWrites},
	{"BadFilters", testBadFilters},
	{"AuditEntries", testAuditEntries},
	{"AuditAtomic", testAuditAtomic},
	{"AuditTerms", testAuditTerms},
	{"AuditRetention", testAuditRetention},
	{"ReaderConcurrentUse", testReaderConcurrent},
	{"AgainstModel", testAgainstModel},
	{"Close", testClose},
}

// Option configures Run.
type Option func(*options)

type options struct{ tamper Tamper }

// WithTamper gives the suite a way to rewrite stored audit entries, for
// subtest "AuditChain". Every engine's conformance test passes one.
func WithTamper(fn Tamper) Option { return func(o *options) { o.tamper = fn } }

// Run runs every conformance subtest against engines from newEngine.
func Run(t *testing.T, newEngine NewEngine, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for _, st := range subtests {
		t.Run(st.name, func(t *testing.T) {
			st.fn(t, newEngine(t))
		})
	}
	t.Run("AuditChain", func(t *testing.T) {
		testAuditChain(t, newEngine(t), o.tamper)
	})
}

// RunAudit runs only the audit log's conformance subtests: for a variant
// of an engine that differs in how it keeps the log (its term index
// stopped, say).
func RunAudit(t *testing.T, newEngine NewEngine, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	for _, st := range subtests {
		if strings.HasPrefix(st.name, "Audit") {
			t.Run(st.name, func(t *testing.T) {
				st.fn(t, newEngine(t))
			})
		}
	}
	t.Run("AuditChain", func(t *testing.T) {
		testAuditChain(t, newEngine(t), o.tamper)
	})
}

// ctx is the background context subtests use; deadlines come from go test.
var ctx = context.Background()

// R parses the compact form `type:id#relation@type:id[#relation]` used
// throughout the suite. It panics on malformed input: it only reads
// literals written in this package.
func R(s string) graph.Relationship {
	res, subj, ok := strings.Cut(s, "@")
	if !ok {
		panic("storagetest: bad relationship " + s)
	}
	obj, rel, ok := strings.Cut(res, "#")
	if !ok {
		panic("storagetest: bad relationship " + s)
	}
	var r graph.Relationship
	r.Resource = ref(obj)
	r.Relation = rel
	sobj, srel, _ := strings.Cut(subj, "#")
	r.Subject.Object = ref(sobj)
	r.Subject.Relation = srel
	return r
}

func ref(s string) graph.ObjectRef {
	typ, id, ok := strings.Cut(s, ":")
	if !ok {
		panic("storagetest: bad object " + s)
	}
	return graph.ObjectRef{Type: typ, ID: id}
}

// Format renders a relationship with its caveat and expiration, for
// comparisons and failure messages.
func Format(r graph.Relationship) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s#%s@%s:%s", r.Resource.Type, r.Resource.ID, r.Relation,
		r.Subject.Object.Type, r.Subject.Object.ID)
	if r.Subject.Relation != "" {
		b.WriteString("#" + r.Subject.Relation)
	}
	if r.Caveat != nil {
		ctx := "{}"
		if len(r.Caveat.Context) > 0 {
			j, _ := json.Marshal(r.Caveat.Context)
			ctx = string(j)
		}
		fmt.Fprintf(&b, "[%s:%s]", r.Caveat.Name, ctx)
	}
	if r.Expiration != nil {
		fmt.Fprintf(&b, "[expiration:%s]", r.Expiration.UTC().Format(time.RFC3339Nano))
	}
	return b.String()
}

func formatAll(rels []graph.Relationship) []string {
	out := make([]string, len(rels))
	for i, r := range rels {
		out[i] = Format(r)
	}
	return out
}

func mutations(op storage.Op, rels ...graph.Relationship) []storage.Mutation {
	m := make([]storage.Mutation, len(rels))
	for i, r := range rels {
		m[i] = storage.Mutation{Op: op, Relationship: r}
	}
	return m
}

func rels(specs ...string) []graph.Relationship {
	out := make([]graph.Relationship, len(specs))
	for i, s := range specs {
		out[i] = R(s)
	}
	return out
}

func write(t *testing.T, e storage.Engine, op storage.Op, rs ...graph.Relationship) storage.Revision {
	t.Helper()
	rev, err := e.Write(ctx, storage.WriteRequest{Mutations: mutations(op, rs...)})
	if err != nil {
		t.Fatalf("write %v %v: %v", op, formatAll(rs), err)
	}
	return rev
}

func touch(t *testing.T, e storage.Engine, specs ...string) storage.Revision {
	t.Helper()
	return write(t, e, storage.OpTouch, rels(specs...)...)
}

func head(t *testing.T, e storage.Engine) storage.Revision {
	t.Helper()
	rev, err := e.HeadRevision(ctx)
	if err != nil {
		t.Fatalf("head revision: %v", err)
	}
	return rev
}

func reader(t *testing.T, e storage.Engine, rev storage.Revision) storage.Reader {
	t.Helper()
	r, err := e.SnapshotReader(ctx, rev)
	if err != nil {
		t.Fatalf("snapshot reader at %d: %v", rev, err)
	}
	if r.Revision() != rev {
		t.Fatalf("reader revision = %d, want %d", r.Revision(), rev)
	}
	return r
}

func collect(t *testing.T, seq iter.Seq2[graph.Relationship, error]) []graph.Relationship {
	t.Helper()
	var out []graph.Relationship
	for r, err := range seq {
		if err != nil {
			t.Fatalf("query after %d results: %v", len(out), err)
		}
		out = append(out, r)
	}
	return out
}

// all returns every relationship visible at rev, in forward order.
func all(t *testing.T, e storage.Engine, rev storage.Revision) []string {
	t.Helper()
	return formatAll(collect(t, reader(t, e, rev).QueryRelationships(ctx, storage.Filter{}, storage.QueryOptions{})))
}

func allAtHead(t *testing.T, e storage.Engine) []string {
	t.Helper()
	return all(t, e, head(t, e))
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func sorted(specs ...string) []string {
	rs := rels(specs...)
	slices.SortFunc(rs, compareForward)
	return formatAll(rs)
}

// compareForward is the forward query order storage.Reader documents.
func compareForward(a, b graph.Relationship) int {
	return cmp.Or(
		cmp.Compare(a.Resource.Type, b.Resource.Type),
		cmp.Compare(a.Resource.ID, b.Resource.ID),
		cmp.Compare(a.Relation, b.Relation),
		cmp.Compare(a.Subject.Object.Type, b.Subject.Object.Type),
		cmp.Compare(a.Subject.Object.ID, b.Subject.Object.ID),
		cmp.Compare(a.Subject.Relation, b.Subject.Relation),
	)
}

// compareReverse is the reverse query order storage.Reader documents.
func compareReverse(a, b graph.Relationship) int {
	return cmp.Or(
		cmp.Compare(a.Subject.Object.Type, b.Subject.Object.Type),
		cmp.Compare(a.Subject.Object.ID, b.Subject.Object.ID),
		cmp.Compare(a.Subject.Relation, b.Subject.Relation),
		cmp.Compare(a.Resource.Type, b.Resource.Type),
		cmp.Compare(a.Resource.ID, b.Resource.ID),
		cmp.Compare(a.Relation, b.Relation),
	)
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want one wrapping %q", what, err, target)
	}
}

// firstErr drains a query and returns its error, failing if it has none.
func firstErr(seq iter.Seq2[graph.Relationship, error]) error {
	n := 0
	for _, err := range seq {
		if err != nil {
			return err
		}
		n++
	}
	return fmt.Errorf("no error (%d results)", n)
}

func sameCaveat(a, b *graph.Caveat) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Name != b.Name {
		return false
	}
	if len(a.Context) == 0 && len(b.Context) == 0 {
		return true
	}
	return reflect.DeepEqual(a.Context, b.Context)
}

func ptr[T any](v T) *T { return &v }
