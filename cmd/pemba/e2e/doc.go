// Package e2e holds Pemba's end-to-end tests: they build the real pemba
// binary, start `pemba serve` on loopback ports against the memory,
// embedded and PostgreSQL datastores (and on the CockroachDB cluster
// PEMBA_TEST_COCKROACH_URL names, when set), and drive it with the CLI, a
// gRPC client and HTTP/JSON requests. The package has no non-test code.
//
// The golden files in testdata/ are CLI sessions (see harness_test.go);
// go test ./cmd/pemba/e2e -rewrite regenerates their expected output.
// TestDocs (readme_test.go) runs the examples of README.md the same way:
// every shell block, in order, against one fresh `pemba serve --dev`.
package e2e
