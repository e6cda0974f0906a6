# Aster — make targets. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 10s
# Packages whose tests start goroutines that talk to each other: always run under -race.
RACE_PKGS := ./dataplane/... ./controlplane/... ./test/...

.PHONY: help
help: ## Describe the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build asterd and asterctl into bin/
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/asterd ./cmd/asterd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/asterctl ./cmd/asterctl

.PHONY: test
test: vet fmt-check ## Run every test (race detector on), vet and the gofmt check: what CI runs
	$(GO) test -race -count=1 -timeout 15m ./...

.PHONY: race
race: ## Run the concurrent packages' tests under the race detector
	$(GO) test -race -count=1 $(RACE_PKGS)

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: fmt-check
fmt-check: ## Fail when a file is not gofmt'ed
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: soak
soak: ## Fault-injecting relay soak: random delays and cut backend links for SOAK (default 3m)
	ASTER_SOAK=$${SOAK:-3m} $(GO) test -race -count=1 -run TestFaultyBackendLinksNeverMixAnswers -timeout 30m -v ./dataplane/proxy

.PHONY: bench
bench: ## Run the microbenchmarks with allocation counts
	$(GO) test -run '^$$' -bench . -benchmem ./dataplane/...

.PHONY: demo
demo: build ## Start 3 local redis-servers and asterd on deploy/examples/standalone.toml (Ctrl-C stops all)
	scripts/demo.sh

.PHONY: docs
docs: ## Regenerate docs/commands.md from the command table
	$(GO) generate ./dataplane/command

.PHONY: generate
generate: ## Regenerate gen/ from proto/ with the buf and protoc plugins pinned in go.mod
	$(GO) tool buf generate

.PHONY: lint-proto
lint-proto: ## Lint proto/ with buf (STANDARD rules)
	$(GO) tool buf lint

.PHONY: check-generated
check-generated: generate ## Fail when gen/ differs from what proto/ generates (stale, edited or untracked files)
	@git diff --exit-code --stat -- gen/ || { echo 'gen/ is stale: run make generate and commit gen/' >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- gen/)"; \
	if [ -n "$$untracked" ]; then echo "untracked generated files, commit them: $$untracked" >&2; exit 1; fi

.PHONY: redis-suite
redis-suite: ## Redis's own Tcl test suite, directly and through asterd (one server, Redis Cluster); not in `make test` (long)
	test/redis-suite/run.sh $(SUITE_ARGS)

.PHONY: bench-peer
bench-peer: ## Peer benchmark: direct Redis vs twemproxy vs asterd, one run (5 rounds, ~12 min)
	bench/peer.sh $(BENCH_ARGS)

.PHONY: bench-peer-quick
bench-peer-quick: ## Peer benchmark, quick (~2 min on an idle box)
	bench/peer.sh --quick $(BENCH_ARGS)
