# Pemba build and test targets. `make run` and `make test` are the two
# commands a fresh machine with Go needs.

GO        ?= go
BIN       ?= bin/pemba
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Packages with concurrent code, run again under the race detector.
RACE_PKGS ?= ./check/... ./graph/... ./storage/... ./server/... ./loadtest ./cmd/...

.PHONY: build run test test-short lint bench proto fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pemba

# run builds pemba and serves the embedded datastore in ./pemba-data as a
# local development server.
run: build
	./$(BIN) serve --dev

test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)

test-short:
	$(GO) test -short ./...

lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# proto regenerates the committed Go code from proto/**/*.proto.
proto:
	./proto/generate.sh

clean:
	rm -rf bin
