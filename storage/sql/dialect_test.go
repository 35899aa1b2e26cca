package sql

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pembadb/pemba/internal/golden"
	"github.com/pembadb/pemba/storage"
)

// The statements below run on both dialects; migrations and the
// PostgreSQL import path are per dialect. Keep this list in step with
// statements.go, migrate.go and gc.go.
var sharedStatements = map[string]string{
	"bounds":                         stmtBounds,
	"instance id":                    stmtInstanceID,
	"next revision":                  stmtNextRevision,
	"audit head":                     stmtAuditHead,
	"insert revision":                stmtInsertRevision,
	"end version":                    stmtEndVersion,
	"insert version":                 stmtInsertVersion,
	"live exists":                    stmtLiveExists,
	"insert schema":                  stmtInsertSchema,
	"read schema":                    stmtReadSchema,
	"set schema revision":            stmtSetSchemaRevision,
	"watch revisions":                stmtWatchRevisions,
	"watch changes":                  stmtWatchChanges,
	"gc floor candidate":             stmtGCFloorCandidate,
	"raise gc floor":                 stmtRaiseGCFloor,
	"gc lock":                        stmtGCLock,
	"gc versions":                    stmtGCVersions,
	"gc expired":                     stmtGCExpired,
	"gc revisions":                   stmtGCRevisions,
	"gc schemas":                     stmtGCSchemas,
	"insert audit entry":             stmtInsertAuditEntry,
	"keep revision record":           stmtKeepRevisionRecord,
	"remove version":                 stmtRemoveVersion,
	"audit entries":                  stmtAuditEntries,
	"audit entries desc":             stmtAuditEntriesDesc,
	"audit term lists":               stmtAuditTermLists,
	"audit term lists desc":          stmtAuditTermListsDesc,
	"audit indexed and oldest":       stmtAuditIndexedOldest,
	"audit entry":                    stmtAuditEntry,
	"audit filter":                   stmtAuditFilter,
	"audit revision at":              stmtAuditRevisionAt,
	"audit oldest":                   stmtAuditOldest,
	"lock audit index":               stmtLockAuditIndex,
	"audit indexed":                  stmtAuditIndexed,
	"insert audit terms":             stmtInsertAuditTerms,
	"advance audit index":            stmtAdvanceAuditIndex,
	"audit index lag":                stmtAuditIndexLag,
	"unindexed entries":              stmtUnindexedEntries,
	"delete audit terms":             stmtDeleteAuditTerms,
	"delete audit terms of revision": stmtDeleteAuditTermsOfRevision,
	"delete audit entries":           stmtDeleteAuditEntries,
	"set audit trimmed hash":         stmtSetAuditTrimmedHash,
	"migrations table":               createMigrationsTable,
	"migration applied":              stmtMigrationApplied,
	"record migration":               stmtRecordMigration,
	"schema version":                 stmtSchemaVersion,
}

// postgresOnly matches constructs CockroachDB lacks or treats differently:
// collations, PostgreSQL's covering-index syntax, temporary tables, COPY,
// advisory locks, LISTEN/NOTIFY, system columns and PL/pgSQL.
var postgresOnly = regexp.MustCompile(`(?i)\bCOLLATE\b|\bINCLUDE\s*\(|\bTEMP(ORARY)?\b|\bCOPY\b|\bpg_\w+|` +
	`\bON COMMIT\b|\bLISTEN\b|\bNOTIFY\b|\bctid\b|\bxmin\b|\btxid_\w+|\bSERIAL\b|\bUNLOGGED\b|\bEXTENSION\b|plpgsql|\bINHERITS\b`)

// cockroachOnly matches CockroachDB syntax PostgreSQL rejects.
var cockroachOnly = regexp.MustCompile(`(?i)\bSTRING\b|\bSTORING\b|\bBYTES\b|USING HASH|\bINVERTED\b|AS OF SYSTEM TIME|\bUPSERT\b`)

// TestCockroachDBStatementsArePortable checks every statement the
// CockroachDB path runs — its migrations, the shared statements and the
// generated queries — for PostgreSQL-only constructs, and the PostgreSQL
// migrations for CockroachDB-only ones. It is a static check: no
// CockroachDB server runs in the tests.
func TestCockroachDBStatementsArePortable(t *testing.T) {
	ms, err := migrations(CockroachDB)
	if err != nil {
		t.Fatal(err)
	}
	stmts := map[string]string{}
	for name, s := range sharedStatements {
		stmts[name] = s
	}
	for _, m := range ms {
		for i, s := range splitStatements(m.SQL) {
			stmts[fmt.Sprintf("migration %04d statement %d", m.Version, i+1)] = s
		}
	}
	for name, q := range sampleQueries() {
		stmts["query "+name] = q.String()
	}
	for name, s := range stmts {
		if bad := postgresOnly.FindString(s); bad != "" {
			t.Errorf("%s uses %q, which CockroachDB lacks:\n%s", name, bad, s)
		}
	}
	pgms, err := migrations(PostgreSQL)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pgms {
		if bad := cockroachOnly.FindString(m.SQL); bad != "" {
			t.Errorf("postgres migration %04d uses CockroachDB's %q", m.Version, bad)
		}
	}
	// The check can fail: the PostgreSQL-only migration lock trips it.
	if postgresOnly.FindString(pgMigrationLock) == "" {
		t.Error("the denylist does not catch the PostgreSQL advisory lock")
	}
}

// dialectStatements are the package's statements that run on one dialect
// only, and are therefore not in sharedStatements.
var dialectStatements = map[string]bool{
	"pgMigrationLock":  true, // PostgreSQL's migration lock
	"pgNotifyRevision": true, // PostgreSQL's commit notification
	"pgListen":         true,
	// Statistics after a bulk import; CockroachDB collects its own.
	"pgRelationshipsPlanned":   true,
	"pgVacuumAnalyzeRelations": true,
}

// TestSharedStatementsListed: every statement constant of the package —
// a stmt* or create* constant, or a pg* one that runs on PostgreSQL only —
// is either in sharedStatements, which the static CockroachDB check reads,
// or in dialectStatements. A statement added without being listed would
// escape the check.
func TestSharedStatementsListed(t *testing.T) {
	fset := token.NewFileSet()
	listed := listedStatements(t, fset)
	consts := statementConstants(t, fset)
	if len(consts) < len(sharedStatements) {
		t.Fatalf("found %d statement constants, fewer than the %d shared ones: the scan is broken", len(consts), len(sharedStatements))
	}
	for _, c := range consts {
		if !listed[c.Name] && !dialectStatements[c.Name] {
			t.Errorf("%s: statement %s is neither in sharedStatements nor in dialectStatements", fset.Position(c.Pos()), c.Name)
		}
	}
}

// statementConstants returns the stmt*, create* and pg* constants
// declared in the package's non-test files.
func statementConstants(t *testing.T, fset *token.FileSet) []*ast.Ident {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	statement := regexp.MustCompile(`^(stmt|create|pg)[A-Z]`)
	var out []*ast.Ident
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			if gen, ok := decl.(*ast.GenDecl); ok && gen.Tok == token.CONST {
				for _, spec := range gen.Specs {
					for _, name := range spec.(*ast.ValueSpec).Names {
						if statement.MatchString(name.Name) {
							out = append(out, name)
						}
					}
				}
			}
		}
	}
	return out
}

// listedStatements returns the constants sharedStatements names, read
// from this file's source.
func listedStatements(t *testing.T, fset *token.FileSet) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(fset, "dialect_test.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || spec.Names[0].Name != "sharedStatements" {
			return true
		}
		for _, elt := range spec.Values[0].(*ast.CompositeLit).Elts {
			if id, ok := elt.(*ast.KeyValueExpr).Value.(*ast.Ident); ok {
				listed[id.Name] = true
			}
		}
		return false
	})
	if len(listed) != len(sharedStatements) {
		t.Fatalf("read %d constants from sharedStatements' source, want %d", len(listed), len(sharedStatements))
	}
	return listed
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- header; not a statement\nCREATE TABLE a (\n  x INT -- a; comment\n);\n\nINSERT INTO a VALUES (1);\nSELECT 1")
	want := []string{"CREATE TABLE a (\n  x INT -- a; comment\n);", "INSERT INTO a VALUES (1);", "SELECT 1"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("splitStatements:\n got  %q\n want %q", got, want)
	}
}

func sampleQueries() map[string]*query {
	rel := "member"
	none := ""
	after := [6]string{"document", "1", "viewer", "user", "alice", ""}
	return map[string]*query{
		"forward": forwardQuery(storage.Filter{ResourceType: "document", ResourceIDs: []string{"1", "2"}, Relation: "viewer",
			Subject: &storage.SubjectFilter{Type: "group", IDs: []string{"eng"}, Relation: &rel}}, 7, 1000, &after, 50),
		"reverse": reverseQuery(storage.ReverseFilter{Subject: storage.SubjectFilter{Type: "user", IDs: []string{"alice"}, Relation: &none},
			ResourceType: "document", Relation: "viewer"}, 7, 1000, &after, 50),
		"exists":                 matchExistsQuery(storage.Filter{ResourceType: "document"}, 1000),
		"delete":                 deleteQuery(storage.Filter{ResourceType: "document", Relation: "viewer"}, 8, 1000, 0, false),
		"delete limit":           deleteQuery(storage.Filter{Subject: &storage.SubjectFilter{Type: "user"}}, 8, 1000, 10, false),
		"delete returning":       deleteQuery(storage.Filter{ResourceType: "document", Relation: "viewer"}, 8, 1000, 0, true),
		"delete limit returning": deleteQuery(storage.Filter{Subject: &storage.SubjectFilter{Type: "user"}}, 8, 1000, 10, true),
		"forward empty":          forwardQuery(storage.Filter{}, 7, 1000, nil, 1000),
	}
}

// TestStatementsGolden prints the statements each dialect would run into
// testdata/statements.txt: every migration statement, the shared
// statements and the queries generated from filters.
func TestStatementsGolden(t *testing.T) {
	golden.RunFile(t, "testdata/statements.txt", func(_ *testing.T, c *golden.Case) string {
		out, err := statement(c.Command, c.Args, c.Input)
		if err != nil {
			return "error: " + err.Error()
		}
		return out
	})
}

// statement runs one command of testdata/statements.txt.
func statement(cmd string, args []string, input string) (string, error) {
	switch cmd {
	case "migration":
		if len(args) != 1 {
			return "", fmt.Errorf("usage: migration <dialect>")
		}
		ms, err := migrations(Dialect(args[0]))
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, m := range ms {
			for _, s := range splitStatements(m.SQL) {
				fmt.Fprintf(&b, "-- %04d_%s\n%s\n", m.Version, m.Name, s)
			}
		}
		return b.String(), nil
	case "statement":
		s, ok := sharedStatements[strings.Join(args, " ")]
		if !ok {
			return "", fmt.Errorf("no shared statement %q", strings.Join(args, " "))
		}
		return s + "\n", nil
	case "forward", "reverse", "exists", "delete":
		return generated(cmd, args, input)
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

// generated builds a query from a JSON filter in input; args are rev=N,
// limit=N, after=a,b,c,d,e,f and returning (a delete that returns what it
// ended).
func generated(cmd string, args []string, input string) (string, error) {
	rev, limit, now := storage.Revision(1), 0, int64(1000)
	var after *[6]string
	returning := false
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "rev":
			n, _ := strconv.Atoi(v)
			rev = storage.Revision(n)
		case "limit":
			limit, _ = strconv.Atoi(v)
		case "after":
			var key [6]string
			copy(key[:], strings.Split(v, ","))
			after = &key
		case "returning":
			returning = true
		default:
			return "", fmt.Errorf("unknown argument %q", a)
		}
	}
	var q *query
	switch cmd {
	case "reverse":
		var f storage.ReverseFilter
		if err := json.Unmarshal([]byte(input), &f); err != nil {
			return "", err
		}
		q = reverseQuery(f, rev, now, after, max(limit, 1))
	default:
		var f storage.Filter
		if err := json.Unmarshal([]byte(input), &f); err != nil {
			return "", err
		}
		switch cmd {
		case "forward":
			q = forwardQuery(f, rev, now, after, max(limit, 1))
		case "exists":
			q = matchExistsQuery(f, now)
		case "delete":
			q = deleteQuery(f, rev, now, limit, returning)
		}
	}
	argText, _ := json.Marshal(q.args)
	return fmt.Sprintf("%s\nargs: %s\n", q.String(), argText), nil
}
