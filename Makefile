# lifeboat. `make test` is what CI runs (through .ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO      ?= go
CACHE   ?= $(or $(LIFEBOAT_CACHE),$(HOME)/.cache/lifeboat)
export PATH := $(CACHE)/bin:/usr/local/go/bin:$(PATH)
export LIFEBOAT_CACHE := $(CACHE)

TEST_TIMEOUT ?= 30m
PKGS    ?= ./...

.PHONY: all deps build install man quickstart test test-short demo bench torture fmt vet

all: build

## deps: Debian packages, MinIO and restic (scripts/deps; cached in $(CACHE))
deps:
	scripts/deps

# The version stamped into the binary (lifeboat version, --version, snapshots'
# "program"); the commit comes from Go's build info.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/lifeboat-backup/lifeboat/engine.Version=$(VERSION)

## build: bin/lifeboat, a static binary (no cgo: one file to copy to a host)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/lifeboat ./cmd/lifeboat

## install: bin/lifeboat to $(PREFIX)/bin (default ~/.local/bin; PREFIX=/usr/local for all users)
PREFIX ?= $(HOME)/.local
install: build
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 bin/lifeboat "$(DESTDIR)$(PREFIX)/bin/lifeboat"

## man: the man pages (lifeboat man) to $(PREFIX)/share/man/man1 (default ~/.local/share/man/man1)
man: build
	bin/lifeboat man "$(DESTDIR)$(PREFIX)/share/man/man1"

## quickstart: run the README's quick start block literally in a fresh shell
## (env -i, a new HOME, a copy of the tree in a temp dir); fails on any error
quickstart:
	scripts/quickstart

## test: vet, the 1 GiB round trip through MinIO (LIFEBOAT_LARGE_SIZE) and a
## year of daily backup+forget without -race, then every test with the race
## detector (MinIO tests must run)
test: deps
	$(GO) vet $(PKGS)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	LIFEBOAT_REQUIRE_MINIO=1 LIFEBOAT_LARGE=1 $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run 'TestLargeRoundTripMinIO|TestCLISeedRetentionOverDays' ./engine/ ./cmd/lifeboat/
	LIFEBOAT_REQUIRE_MINIO=1 LIFEBOAT_REQUIRE_MARIADB=1 LIFEBOAT_REQUIRE_POSTGRES=1 LIFEBOAT_REQUIRE_REDIS=1 LIFEBOAT_REQUIRE_CHROMIUM=1 LIFEBOAT_REQUIRE_RESTIC=1 $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## test-short: quick tests, no deps needed
test-short:
	$(GO) test -short $(PKGS)

## demo: the end-to-end demo (scripts/demo)
demo: deps build
	scripts/demo

## torture: the seeded random workload against one repository (docs/torture.md):
## make torture TORTURE_DURATION=30m TORTURE_STORE=minio TORTURE_SEED=42
TORTURE_DURATION ?= 10m
TORTURE_STORE    ?= file
TORTURE_SEED     ?= -1
torture:
	$(GO) run ./cmd/lifeboat-dev torture --duration $(TORTURE_DURATION) --store $(TORTURE_STORE) --seed $(TORTURE_SEED) $(TORTURE_FLAGS)

## bench: benchmarks (bench/run)
bench:
	bench/run

## fmt: gofmt the tree
fmt:
	gofmt -l -w $$(git ls-files '*.go')

## vet: go vet
vet:
	$(GO) vet $(PKGS)
