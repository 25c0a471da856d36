.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash
export PATH := /usr/local/go/bin:$(PATH)

GO       ?= go
BIN      ?= bin/glance-api
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

##@ Run

.PHONY: run
run: build ## Build and start the embedded default (SQLite + ./data, 127.0.0.1:9292, no auth)
	$(BIN)

##@ Build

.PHONY: build
build: ## Build bin/glance-api (pure Go, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/glance-api

.PHONY: build-ceph
build-ceph: ## Build bin/glance-api with the rbd store (cgo; needs librados-dev and librbd-dev, see scripts/ceph-dev.sh)
	CGO_ENABLED=1 $(GO) build -tags ceph,pacific -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/glance-api

##@ Test

.PHONY: test
test: ## Run every test; the MySQL suite runs when GLANCE_TEST_MYSQL_DSN is set
	$(GO) test -shuffle=on -timeout 20m ./...

.PHONY: test-short
test-short: ## Run the fast tests only (no real CLIs, no glance-manage)
	$(GO) test -short -shuffle=on ./...

.PHONY: test-mysql
test-mysql: ## Run every test on SQLite and on the local MariaDB (started or installed when missing)
	scripts/ensure-mariadb.sh
	GLANCE_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/test' $(GO) test -shuffle=on -timeout 20m ./...

.PHONY: test-ceph
test-ceph: ## Run the rbd store's tests on a one-node Ceph cluster (scripts/ceph-dev.sh starts it, installing Ceph when missing): the driver, the wiring, HTTP against a ceph build, Glance 25.1 on the same pool, and OSD failures on a second cluster
	REF_STORE=rbd scripts/reference-glance.sh install
	eval "$$(scripts/ceph-dev.sh start)" && export CGO_ENABLED=1 GLANCE_TEST_STRICT=1 GLANCE_TEST_RBD_FAULTS=1 && \
		$(GO) test -tags ceph,pacific -count=1 ./stores/rbd/ && \
		$(GO) test -tags ceph,pacific -count=1 -run 'RBD' ./cmd/glance-api/ && \
		$(GO) test -tags ceph,pacific -count=1 -v -run '^TestRBD' ./cmd/glance-api/internal/e2e/

.PHONY: e2e
e2e: ## Run the end-to-end suite: builds the binary and drives it over HTTP and with the real CLIs
	$(GO) test -count=1 -v ./cmd/glance-api/internal/e2e/

.PHONY: e2e-keystone
e2e-keystone: ## The keystone flavor's end-to-end tests against a real Keystone on 127.0.0.1:5000 (scripts/keystone-dev.sh starts it, installing it when missing)
	scripts/keystone-dev.sh start
	eval "$$(scripts/keystone-dev.sh env)" && $(GO) test -count=1 -v -run TestKeystone ./cmd/glance-api/internal/e2e/

.PHONY: e2e-mysql
e2e-mysql: ## The end-to-end suite (without the CLI test) on the local MariaDB
	scripts/ensure-mariadb.sh
	mariadb -h127.0.0.1 -uroot -e 'DROP DATABASE IF EXISTS glance_e2e'
	GLANCE_E2E_MYSQL_DSN='mysql+pymysql://root@127.0.0.1/glance_e2e' $(GO) test -count=1 -short ./cmd/glance-api/internal/e2e/

.PHONY: test-concurrency
test-concurrency: ## The concurrency test alone: 16 clients against a -race build, on SQLite and (with GLANCE_TEST_MYSQL_DSN) MariaDB
	$(GO) test -count=1 -v -run '^TestConcurrency$$' ./cmd/glance-api/internal/e2e/

.PHONY: race
race: ## Run the tests with the race detector (needs cgo)
	CGO_ENABLED=1 $(GO) test -race -short ./...

FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Run each disk-format fuzz target of proxies/inspect for FUZZTIME (default 10s), one after another
	@for t in $$($(GO) test -list '^Fuzz' ./proxies/inspect/ | grep '^Fuzz'); do \
		echo "== $$t"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./proxies/inspect/ || exit 1; \
	done

##@ Quality

.PHONY: lint
lint: ## gofmt, go vet, staticcheck and the import-boundary check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	scripts/check-imports.sh

##@ Measure

.PHONY: bench
bench: build ## Start the server on a scratch directory and drive it with cmd/glance-bench
	scripts/bench.sh glance-go

SOAK_DURATION ?= 10m

.PHONY: soak
soak: build ## Run the server on a fresh MariaDB database under 16 clients' mix of writes and reads for SOAK_DURATION (default 10m); per-minute figures and a verdict on growth
	scripts/ensure-mariadb.sh
	SOAK_DURATION=$(SOAK_DURATION) scripts/soak.sh

.PHONY: bench-reference
bench-reference: ## The same load against Debian's Glance 25.1 (installed and started when missing)
	scripts/bench.sh reference

.PHONY: bench-mysql
bench-mysql: build ## The bench on the local MariaDB (database glance_bench_go, dropped and created afresh); BENCH_DB=mysql make bench-reference for Glance's
	BENCH_DB=mysql scripts/bench.sh glance-go

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z0-9_.-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
