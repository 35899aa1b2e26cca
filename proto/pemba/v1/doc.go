// Package pembav1 is Pemba's public API: the SchemaService,
// RelationshipService, PermissionService, WatchService and AuditService
// messages and their gRPC and grpc-gateway (HTTP/JSON) bindings.
//
// Everything here except this file is generated from the .proto files
// beside it by `make proto` (proto/generate.sh); edit the .proto files,
// never the .pb.go files.
package pembav1
