#!/usr/bin/env bash
# Regenerates the Go code for proto/pemba/v1/*.proto (the public API) and
# proto/pemba/dispatch/v1/*.proto (the internal API between the servers of
# a cluster, without an HTTP/JSON gateway). The generated files are
# committed, so building Pemba never needs this; changing a .proto does.
#
# Needs protoc with the well-known types (Debian: apt-get install
# protobuf-compiler). The Go plugins are pinned as `tool` directives in
# go.mod and run with `go tool`, so every machine generates identical code.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v protoc >/dev/null 2>&1; then
	echo "protoc not found: install Debian's protobuf-compiler (apt-get install protobuf-compiler)" >&2
	exit 1
fi

# Plugins are wrappers around `go tool` so protoc finds them on PATH.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
for plugin in protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway; do
	printf '#!/bin/sh\nexec go -C %q tool %s "$@"\n' "$PWD/.." "$plugin" >"$bin/$plugin"
	chmod +x "$bin/$plugin"
done

rm -f pemba/v1/*.pb.go pemba/v1/*.pb.gw.go pemba/dispatch/v1/*.pb.go
PATH="$bin:$PATH" protoc \
	-I . -I third_party -I /usr/include \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	--grpc-gateway_out=. --grpc-gateway_opt=paths=source_relative \
	pemba/v1/*.proto
PATH="$bin:$PATH" protoc \
	-I . -I /usr/include \
	--go_out=. --go_opt=paths=source_relative \
	--go-grpc_out=. --go-grpc_opt=paths=source_relative \
	pemba/dispatch/v1/*.proto
gofmt -l pemba/v1 pemba/dispatch/v1 | xargs -r gofmt -w
