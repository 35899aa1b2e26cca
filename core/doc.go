// Package core is what every Pemba API shares, free of any wire format:
// zookies and cursors, consistency (a request's freshness requirement
// resolved to a revision), the compiled schema in force at a revision,
// the writes (their ordering, the reason and labels they record, the
// schema changes the audit log records), and the field paths input errors
// name. The pemba.v1 server and any other API
// translate their messages into these values and back; rules that must
// hold for every API — how a zookie is read, which revision a consistency
// mode reads at, which schema a snapshot carries — live here once.
//
// A caller builds one Revisions and one Schemas per datastore and shares
// them among requests; both are safe for concurrent use.
package core
