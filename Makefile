# cellgrid: `make run` starts the dev stack, `make test` runs every test.
# Both install missing system packages first (build/deps.sh).

GO        ?= go
BIN       := bin/cellgrid
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Packages with concurrency, also run under the race detector.
RACE_PKGS := ./internal/... ./relay/... ./cell/... ./dgs/... ./global/... ./client/... ./topology/...
FUZZTIME  ?= 10s
BENCHTIME ?= 1s

.PHONY: all deps build run test test-race bench lint rules fuzz clean

all: build

deps:
	@build/deps.sh

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cellgrid

run: deps build
	./$(BIN) dev

test: deps lint rules
	build/hashistack.sh
	$(GO) test -count=1 -timeout 15m ./...
	cd examples && $(GO) build ./... && $(GO) vet ./...
	$(MAKE) test-race

test-race:
	$(GO) test -count=1 -race -timeout 15m $(RACE_PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Prometheus alert rules: syntax and their unit tests (deploy/deploy_test.go
# runs the same and also checks every metric name against the code).
rules:
	cd deploy/prometheus && promtool check rules alerts.yml && promtool test rules alerts_test.yml

# Runs every fuzz target for FUZZTIME each (seed corpora live in testdata/).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
