// Package loadtest measures a running Pemba server the way its users do:
// over gRPC, with closed-loop workers (each sends its next request as soon
// as the previous one returns), on the graphs of package dataset, reporting
// per-operation throughput and tail latencies.
//
// A run loads a data set through the streaming Import API (unless told to
// reuse what is loaded), runs one workload for a fixed duration, then runs
// the same workers for the same duration against the gRPC health Check, a
// request that does no authorization work: its rate is the floor — what the
// transport, the server's interceptors and the machine allow — and the
// report gives the workload's check rate as a fraction of it. Server-side
// counters (cache hits, dispatches, read cache hits and datastore queries)
// are scraped from the server's /metrics before and after the workload.
//
// Several endpoints (servers sharing one datastore) share a run's
// requests round-robin, and the report gives each one's operations too
// (nodes.go).
//
// Callers build a Config, call Run, and print or save the Report.
package loadtest
