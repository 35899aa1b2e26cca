package server

// SpiceDB's API. authzed.api.v1 is served on the gRPC listener beside
// pemba.v1, as a translation over the same core: the writer (validation,
// limits, write ordering, audit), the check engine and its cache, and the
// revisions. A ZedToken is a zookie, so one token works on both APIs, and
// the same interceptors authenticate, log, meter and bound every call.
//
//	authzed_convert.go       messages, consistency, errors, version header
//	authzed_permissions.go   PermissionsService: checks, writes, reads, lookups
//	authzed_export.go        PermissionsService.ExportBulkRelationships
//	authzed_schema.go        SchemaService: ReadSchema, WriteSchema
//	authzed_watch.go         WatchService
//	authzed_experimental.go  ExperimentalService: bulk check and export
//	authzed_unimplemented.go the RPCs not served yet

import (
	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc"
)

// registerAuthzed registers SpiceDB's authzed.api.v1 services on g, beside
// pemba.v1: the services SpiceDB clients call, each answering UNIMPLEMENTED
// for the RPCs this server does not serve yet.
func (s *Server) registerAuthzed(g *grpc.Server) {
	perms := &authzedPermissions{s: s}
	v1.RegisterSchemaServiceServer(g, &authzedSchema{s: s})
	v1.RegisterPermissionsServiceServer(g, perms)
	v1.RegisterWatchServiceServer(g, &authzedWatch{s: s})
	v1.RegisterExperimentalServiceServer(g, &authzedExperimental{perms: perms})
}
