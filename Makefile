# Aster — make targets. `make help` lists them.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X main.version=$(VERSION)
# Static binaries (no libc), as the image is FROM scratch; the tests keep cgo for -race.
BUILD_ENV := CGO_ENABLED=0
# make install: binaries to $(DESTDIR)$(PREFIX)/bin, the example configuration to
# $(DESTDIR)$(SYSCONFDIR)/aster/aster.toml unless one is there.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
# make image: buildah as root on a machine without fuse or user namespaces; IMAGE_FLAGS adds
# storage options (a test passes --root/--runroot of its own).
IMAGE        ?= localhost/asterd:$(VERSION)
BUILDAH      ?= buildah
BUILDAH_FLAGS ?= --storage-driver vfs
CA_BUNDLE    ?= /etc/ssl/certs/ca-certificates.crt
FUZZTIME  ?= 10s
# The developer tools (buf, the protoc plugins, staticcheck) are pinned in their own module, so
# the product's go.mod lists only what asterd, asterctl and the tests use.
TOOL      := $(GO) tool -modfile=tools/go.mod
# Tests that call t.Parallel (test/e2e) run this many at once per package: they mostly wait on
# their own servers and asterds, so more than GOMAXPROCS of them keep 2 cores busy.
TEST_PARALLEL ?= 4
# The longest packages first: go test runs packages in the order named (two at a time on two
# cores), and the e2e package last would start only when the rest were done.
TEST_FIRST := ./test/e2e ./dataplane/proxy
# Packages whose tests start goroutines that talk to each other: always run under -race.
RACE_PKGS := ./dataplane/... ./controlplane/... ./test/...

.PHONY: help
help: ## Describe the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build static asterd and asterctl into bin/
	$(BUILD_ENV) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/asterd ./cmd/asterd
	$(BUILD_ENV) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/asterctl ./cmd/asterctl

.PHONY: install
install: build ## Install the binaries to PREFIX/bin (/usr/local/bin) and the example config to /etc/aster/
	install -D -m 0755 $(BIN)/asterd $(DESTDIR)$(PREFIX)/bin/asterd
	install -D -m 0755 $(BIN)/asterctl $(DESTDIR)$(PREFIX)/bin/asterctl
	@if [[ -e $(DESTDIR)$(SYSCONFDIR)/aster/aster.toml ]]; then \
	  echo "keeping $(DESTDIR)$(SYSCONFDIR)/aster/aster.toml"; \
	else \
	  install -D -m 0644 deploy/examples/standalone.toml $(DESTDIR)$(SYSCONFDIR)/aster/aster.toml; \
	fi

.PHONY: image
image: build ## Build the container image localhost/asterd:VERSION with buildah (FROM scratch)
	rm -rf $(BIN)/image && mkdir -p $(BIN)/image
	cp $(BIN)/asterd $(BIN)/asterctl $(CA_BUNDLE) $(BIN)/image/
	cp deploy/examples/standalone.toml $(BIN)/image/aster.toml
	$(BUILDAH) $(BUILDAH_FLAGS) bud --isolation chroot --layers=false \
	  --build-arg VERSION=$(VERSION) -f Containerfile -t $(IMAGE) $(BIN)/image

.PHONY: test
test: vet fmt-check allocs ## Run every test (race detector on), the allocation tests, vet and the gofmt check: what CI runs
	$(GO) test -race -count=1 -parallel $(TEST_PARALLEL) -timeout 15m $(TEST_FIRST) ./...

.PHONY: allocs
allocs: ## Run the allocation tests (Test*Alloc*) without the race detector, under which sync.Pool drops items at random
	$(GO) test -count=1 -run Alloc ./dataplane/...

.PHONY: race
race: ## Run the concurrent packages' tests under the race detector
	$(GO) test -race -count=1 $(RACE_PKGS)

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: lint
lint: vet fmt-check mod-check staticcheck lint-proto cross-check ## go vet, the gofmt and go.mod checks, staticcheck, buf lint and the macOS and FreeBSD builds: what CI runs besides the tests

.PHONY: cross-check
cross-check: ## Fail when the binaries do not build for macOS and FreeBSD (Linux-only code needs its build tags)
	GOOS=darwin $(GO) build ./...
	GOOS=freebsd $(GO) build ./...

.PHONY: mod-check
mod-check: ## Fail when go.mod or tools/go.mod is not tidy (the product's module lists only what it uses)
	$(GO) mod tidy -diff
	cd tools && $(GO) mod tidy -diff

.PHONY: staticcheck
staticcheck: ## staticcheck (pinned in tools/go.mod) over every package and its tests
	$(TOOL) staticcheck ./...

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
generate: ## Regenerate gen/ from proto/ with buf and the protoc plugins pinned in tools/go.mod
	$(TOOL) buf generate

.PHONY: lint-proto
lint-proto: ## Lint proto/ with buf (STANDARD rules)
	$(TOOL) buf lint

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
