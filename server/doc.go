// Package server is Pemba's network face: it serves the pemba.v1 gRPC API
// (and its HTTP/JSON gateway) over a storage.Engine and a check.Engine.
//
// It owns what sits between the wire and the engines: bearer-token
// authentication, zookies and consistency (turning a request's
// Consistency into a revision, with a quantized head for
// minimize_latency), validation of writes against the stored schema,
// refusal of schema changes that would orphan relationships, the mapping
// of every engine error to a gRPC status in one place (errors.go), request
// and connection limits (an HTTP request is authenticated and its body
// capped before the gateway reads it, gateway.go), health (one datastore
// probe behind both /readyz and the gRPC health service, readiness.go),
// Prometheus metrics and structured logs. The AuditService translates
// ReadAudit into an audit.Query and VerifyAudit into auditlog.Verify; the
// queries themselves live in package audit.
//
// A caller opens the datastore, builds a Config and calls New, then Serve;
// Shutdown drains in-flight requests. The server never closes the engine
// it was handed: the opener does, after Shutdown returns.
package server
