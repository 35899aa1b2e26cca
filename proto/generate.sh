#!/usr/bin/env bash
# Regenerates the Go code for proto/pemba/v1/*.proto (the public API) and
# proto/pemba/dispatch/v1/*.proto (the internal API between the servers of
# a cluster, without an HTTP/JSON gateway), and the OpenAPI document of the
# public HTTP/JSON API (server/openapi/pemba.swagger.json, served at
# /openapi.json). The generated files are committed, so building Pemba
# never needs this; changing a .proto does.
#
#   generate.sh              regenerate everything in place
#   generate.sh openapi DIR  write only the OpenAPI document, into DIR
#                            (the server's tests compare it with the
#                            committed one)
#
# Needs protoc with the well-known types (Debian: apt-get install
# protobuf-compiler). The plugins are pinned as `tool` directives in
# go.mod and run with `go tool`, so every machine generates identical code.
set -euo pipefail

only_openapi=
if [ "${1:-}" = openapi ]; then
	if [ $# -ne 2 ] || [ ! -d "$2" ]; then
		echo "usage: $0 openapi DIR (an existing directory)" >&2
		exit 2
	fi
	only_openapi=$(cd "$2" && pwd)
fi
cd "$(dirname "$0")"

if ! command -v protoc >/dev/null 2>&1; then
	echo "protoc not found: install Debian's protobuf-compiler (apt-get install protobuf-compiler)" >&2
	exit 1
fi

# Plugins are wrappers around `go tool` so protoc finds them on PATH.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
for plugin in protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2; do
	printf '#!/bin/sh\nexec go -C %q tool %s "$@"\n' "$PWD/.." "$plugin" >"$bin/$plugin"
	chmod +x "$bin/$plugin"
done

# openapi writes DIR/pemba.swagger.json: every pemba.v1 route in one
# document, with the options in openapi.yaml.
openapi() {
	PATH="$bin:$PATH" protoc \
		-I . -I third_party -I /usr/include \
		--openapiv2_out="$1" \
		--openapiv2_opt=allow_merge=true,merge_file_name=pemba,openapi_configuration="$PWD/openapi.yaml" \
		pemba/v1/*.proto
}

if [ -n "$only_openapi" ]; then
	openapi "$only_openapi"
	exit 0
fi

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
openapi ../server/openapi
