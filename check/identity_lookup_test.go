package check

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestIdentityLookupSubjects times sampled LookupSubjects requests (the
// load generator's: read on a random resource, users, a random caveat
// context) on one engine, as a server answers them, so its caches fill
// as the requests go: latency percentiles, and the cost per 1,000
// subjects returned. PEMBA_IDENTITY_LOOKUPS sets the count (default
// 200). A measuring tool (see TestIdentityProfile), not a test of speed.
func TestIdentityLookupSubjects(t *testing.T) {
	e, snap, ds := openIdentity(t)
	n := envInt("PEMBA_IDENTITY_LOOKUPS", 200)
	smp := ds.NewSampler(11)
	var took []time.Duration
	var total time.Duration
	subjects := 0
	for range n {
		l := smp.LookupSubjects()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		found := 0
		err := e.LookupSubjects(ctx, snap, LookupSubjectsRequest{Resource: l.Resource, Permission: l.Permission, SubjectType: l.SubjectType, Context: l.Context},
			func(SubjectResult) bool { found++; return true })
		cancel()
		d := time.Since(start)
		if err != nil {
			t.Fatalf("%s#%s: %v", l.Resource, l.Permission, err)
		}
		took = append(took, d)
		total += d
		subjects += found
	}
	slices.Sort(took)
	per := time.Duration(0)
	if subjects > 0 {
		per = total * 1000 / time.Duration(subjects)
	}
	t.Logf("lookup-subjects on one engine: %d requests, %d subjects; p50 %v, p90 %v, p99 %v, max %v; %v per 1,000 subjects",
		n, subjects, took[n/2], took[n*9/10], took[n*99/100], took[n-1], per)
}
