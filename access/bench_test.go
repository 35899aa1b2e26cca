package access_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pembadb/pemba/access"
	"github.com/pembadb/pemba/graph"
)

// BenchmarkExpiring times one ExpiringAccess answer for a 7-day window
// over a random world of PEMBA_ACCESS_BENCH_USERS users (default 2,000:
// about 3,000 relationships, a quarter never expiring, the rest over 30
// days), on the embedded engine:
//
//	go test ./access -run '^$' -bench Expiring -cpu 1
func BenchmarkExpiring(b *testing.B) {
	users := 2000
	if s := os.Getenv("PEMBA_ACCESS_BENCH_USERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			b.Fatalf("PEMBA_ACCESS_BENCH_USERS=%q: want a number >= 10", s)
		}
		users = n
	}
	w := newWorld(b, b.TempDir())
	now := time.Now()
	randomWorld(b, w, 3, users, now)
	snap := w.head(b)
	for _, relsOnly := range []bool{true, false} {
		b.Run(fmt.Sprintf("users=%d/relationships_only=%v", users, relsOnly), func(b *testing.B) {
			items := 0
			for b.Loop() {
				items = len(expiringLines(b, w.src, snap, access.ExpiringQuery{Within: 7 * 24 * time.Hour, Now: now, RelationshipsOnly: relsOnly}))
			}
			b.ReportMetric(float64(items), "items/op")
		})
	}
}

// BenchmarkDiff times one AccessDiff of a user between the revision
// after the random world of BenchmarkExpiring was written and the head,
// after a tenth of its relationships were replaced and a tenth deleted:
//
//	go test ./access -run '^$' -bench Diff -cpu 1
func BenchmarkDiff(b *testing.B) {
	const users = 2000
	w := newWorld(b, b.TempDir())
	now := time.Now()
	mid := randomWorld(b, w, 3, users, now)
	rows := 0
	for i := 0; b.Loop(); i++ {
		user := graph.SubjectRef{Object: graph.ObjectRef{Type: "user", ID: fmt.Sprintf("u%d", i%(users/5))}}
		ans, err := access.Diff(ctx, w.src, access.DiffQuery{Subject: user, From: access.DiffEnd{Revision: mid, ByRevision: true, Field: "from_zookie"}})
		if err != nil {
			b.Fatal(err)
		}
		rows += len(ans.Rows)
	}
	b.ReportMetric(float64(rows)/float64(b.N), "rows/op")
}
