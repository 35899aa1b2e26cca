# Pemba build and test targets. `make run` and `make test` are the two
# commands a fresh machine with Go needs.

GO        ?= go
BIN       ?= bin/pemba
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Packages with concurrent code, run again under the race detector.
RACE_PKGS ?= ./access/... ./audit/... ./core/... ./check/... ./graph/... ./storage/... ./server/... ./loadtest ./cmd/...

.PHONY: build install run test test-short lint bench proto fuzz fuzz-short clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pemba

# install puts pemba on PATH: in PREFIX/bin when PREFIX is set, else in
# Go's install directory ($(go env GOBIN), or $(go env GOPATH)/bin).
PREFIX ?=
install:
ifeq ($(PREFIX),)
	$(GO) install -ldflags "$(LDFLAGS)" ./cmd/pemba
	@echo "installed pemba in $$($(GO) env GOBIN || true)$$( [ -n "$$($(GO) env GOBIN)" ] || echo "$$($(GO) env GOPATH)/bin")"
else
	mkdir -p $(PREFIX)/bin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(PREFIX)/bin/pemba ./cmd/pemba
	@echo "installed pemba in $(PREFIX)/bin"
endif

# run builds pemba and serves the embedded datastore in ./pemba-data as a
# local development server.
run: build
	./$(BIN) serve --dev

test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	$(MAKE) fuzz-short

test-short:
	$(GO) test -short ./...

lint:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

# Every fuzz target, as package:Target: one per parser reachable from the
# network, and the validation-file reader.
FUZZ_TARGETS ?= ./schema:FuzzParseSchema ./schema:FuzzCaveatEvaluate \
	./graph:FuzzParseRelationship ./graph:FuzzFormatRelationship \
	./storage:FuzzValidateRelationship ./check/validationfile:FuzzParse \
	./core:FuzzZookieDecode ./core:FuzzCursorDecode ./check:FuzzDecodeAccessCursor
# make test fuzzes for a count of inputs, not a duration: Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when a
# -fuzztime duration ends while a worker is busy (go.dev/issue/75804), and a
# count has no deadline to race.
FUZZTIME  ?= 20000x
FUZZ_LONG ?= 10m
# One worker per target leaves the other cores to the rest of the machine.
FUZZFLAGS ?= -parallel 1

# fuzz-short runs each fuzz target for FUZZTIME (a count of inputs, or a
# duration), one after the other; new
# failing inputs land in the package's testdata/fuzz.
fuzz-short:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg || exit 1; \
	done

# fuzz runs each fuzz target for FUZZ_LONG.
fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(FUZZ_LONG)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# proto regenerates the committed Go code from proto/**/*.proto.
proto:
	./proto/generate.sh

clean:
	rm -rf bin
