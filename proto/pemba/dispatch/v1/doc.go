// Package dispatchv1 is the internal API between the servers of one
// Pemba cluster: DispatchService, which a server calls to have the server
// owning a check sub-problem answer it. It is not part of the public API:
// it has no HTTP/JSON mapping and accepts only the cluster token.
//
// Everything here except this file is generated from the .proto file
// beside it by `make proto` (proto/generate.sh).
package dispatchv1
