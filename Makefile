# Shale build entry points. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
MODULE    := github.com/shaledb/shale
TOOLS_BIN := $(CURDIR)/bin/tools
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help build proto thrift proto-check test lint fmt-check vet run clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  %-12s %s\n", $$1, $$2 }'

build: ## build the static binary bin/shale
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/shale ./cmd/shale

# Every .proto under proto/ is compiled; new files are picked up automatically.
proto: ## regenerate Go code from proto/**/*.proto (installs protoc and pinned plugins if missing)
	scripts/install-tools.sh proto
	protoc -I proto \
		--plugin=protoc-gen-go=$(TOOLS_BIN)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(TOOLS_BIN)/protoc-gen-go-grpc \
		--go_out=. --go_opt=module=$(MODULE) \
		--go-grpc_out=. --go-grpc_opt=module=$(MODULE) \
		$$(find proto -type f -name '*.proto' | LC_ALL=C sort)

# The HBase Thrift2 gateway's Go code (proto/hbase) comes from
# proto/hbase.thrift through Debian's thrift-compiler; the checked-in code was
# generated with thrift 0.17.0 and builds against github.com/apache/thrift
# v0.25.0 (go.mod).
# proto/hbase1 (the Thrift1 gateway) comes from proto/hbase1.thrift the same way.
thrift: ## regenerate proto/hbase and proto/hbase1 from proto/hbase.thrift and proto/hbase1.thrift (installs thrift-compiler if missing)
	scripts/install-tools.sh proto
	rm -rf proto/hbase proto/hbase1
	thrift --gen go:package_prefix=$(MODULE)/proto/,skip_remote -out proto proto/hbase.thrift
	thrift --gen go:package_prefix=$(MODULE)/proto/,skip_remote -out proto proto/hbase1.thrift

proto-check: proto ## regenerate and fail if the checked-in generated code differs
	@git diff --exit-code -- proto/ || { \
		echo "proto-check: generated code in proto/ is out of date; run 'make proto' and commit the result" >&2; exit 1; }
	@untracked="$$(git ls-files --others --exclude-standard -- 'proto/*.pb.go')"; \
	if [[ -n "$$untracked" ]]; then \
		echo "proto-check: generated files not checked in:" >&2; echo "$$untracked" >&2; exit 1; fi

fmt-check: ## fail listing hand-written Go files that are not gofmt-formatted
	scripts/check-gofmt.sh

# Vetted with the build's flags (no cgo in this module), so vet's compiled
# dependencies are the build's: on an empty build cache vet then build take
# about 3 minutes instead of 6.
vet: ## go vet ./...
	CGO_ENABLED=0 $(GO) vet -trimpath ./...

lint: fmt-check vet ## gofmt check + go vet

# The unit packages that take longest under -race, slowest first. go test
# starts test binaries in the order it is given packages; listed first, these
# run beside the many short packages instead of alone at the end (the store's
# package alone took the last three minutes of the run).
SLOW_UNIT_PKGS = ./tabletserver/store ./kvclient ./cmd/shale ./sql-lite ./kvclient/thriftgw ./bench/drivers ./importer ./placementdriver

# -race needs cgo, so it is forced on here (the binary itself is built without).
# Fuzz targets run their seed corpora as ordinary tests.
test: vet fmt-check ## go vet, gofmt check, promtool checks, then the whole test suite with -race
	scripts/install-tools.sh ci
	$(MAKE) --no-print-directory deploy-check
	@# One shale binary for every test that starts processes (internal/proctest).
	$(MAKE) --no-print-directory build
	SHALE_TEST_BINARY=$(CURDIR)/bin/shale CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m $(SLOW_UNIT_PKGS) $$($(GO) list ./... | grep -v '/tests/')
	@# End-to-end suites (whole clusters, real processes). Those that mostly
	@# wait on their processes run two at a time; the CPU-bound ones, which
	@# measure throughput or drive heavy load, one at a time after them.
	SHALE_TEST_BINARY=$(CURDIR)/bin/shale CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m -p 2 $$($(GO) list ./tests/... | grep -v -e '/tests/kvnemesis$$' -e '/tests/qos$$')
	SHALE_TEST_BINARY=$(CURDIR)/bin/shale CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m -p 1 ./tests/kvnemesis/ ./tests/qos/

# Every fuzz target (func FuzzXxx) for FUZZTIME each, one at a time
# (scripts/fuzz.sh; docs/security.md). FUZZ=regexp picks targets. A crash
# leaves its input in the package's testdata/fuzz/, a regression test once
# fixed.
FUZZTIME ?= 30s

.PHONY: fuzz vulncheck

fuzz: ## run every fuzz target for FUZZTIME each (default 30s; FUZZ=regexp selects)
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# govulncheck against the Go vulnerability database, built from the
# golang.org/x/vulndb module through the module proxy (VULNDB=url to use
# another); fails on a called vulnerable function (docs/security.md).
vulncheck: ## govulncheck ./...: fail on a called function with a known vulnerability
	scripts/vulncheck.sh

# MySQL protocol address of `make run`'s playground (MYSQL_ADDR= for none).
MYSQL_ADDR ?= 127.0.0.1:3306

# The Prometheus scrape config and alert rules in deploy/prometheus, checked
# by Debian's promtool (package prometheus; scripts/install-tools.sh ci
# installs it). deploy/metrics_test.go checks that the rules and the Grafana
# dashboards name only exported metrics.
.PHONY: deploy-check

deploy-check: ## promtool check config and rules of deploy/prometheus
	@command -v promtool >/dev/null || scripts/install-tools.sh ci
	promtool check config deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/alerts.yml

run: build ## build, start a local playground cluster and open the SQL shell on it (demo tables loaded; MySQL clients on $(MYSQL_ADDR))
	bin/shale playground --sql --demo --mysql-addr "$(MYSQL_ADDR)"

clean: ## remove build outputs and installed tools
	rm -rf bin/

# ---- deployment: container image and the Docker nemesis suite ----
# (deploy/README.md, docs/reliability.md)

IMAGE ?= shale:dev

.PHONY: image e2e

# The image is FROM scratch: nothing is pulled, so it builds offline. The
# context is a staging directory holding only the binary.
image: build ## build the container image (IMAGE, default shale:dev) from bin/shale, FROM scratch
	rm -rf bin/image && mkdir -p bin/image/data
	cp bin/shale bin/image/shale
	docker build -q -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE) bin/image

# Nemesis suite against a Docker Compose cluster (CI-sized by default: 2
# runs of 90s of faults; SHALE_E2E_RUNS, SHALE_E2E_DURATION and
# SHALE_TEST_SEED scale or replay it), then the crash loops with more cycles
# than `make test` runs (SHALE_CRASH_CYCLES, SHALE_CRASH_PD_CYCLES).
e2e: image ## nemesis suite on Docker + long crash loops; SHALE_E2E_RUNS=10 SHALE_E2E_DURATION=2m for the full run
	$(GO) vet -tags e2e ./tests/e2e/
	SHALE_IMAGE=$(IMAGE) SHALE_BIN=$(CURDIR)/bin/shale $(GO) test -tags e2e -count=1 -timeout 4h -v -run TestNemesis ./tests/e2e/
	SHALE_CRASH_CYCLES=$${SHALE_CRASH_CYCLES:-60} SHALE_CRASH_PD_CYCLES=$${SHALE_CRASH_PD_CYCLES:-20} \
		CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m -v -run 'TestCrash' ./tests/crash/

# The kvnemesis generator (tests/kvnemesis) for 30 minutes instead of the
# 60 s that `make test` runs; SHALE_TEST_SEED replays a run's choices.
.PHONY: kvnemesis-soak

kvnemesis-soak: ## randomized operations under faults checked against a model, 30 min (SHALE_KVNEMESIS_DURATION, SHALE_TEST_SEED)
	SHALE_KVNEMESIS_DURATION=$${SHALE_KVNEMESIS_DURATION:-30m} CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 3h -v -run TestKVNemesis ./tests/kvnemesis/

# YCSB side by side against a 3-member etcd cluster (bench/compare.sh; its
# header lists the settings: RECORDS, THREADS, WORKLOADS, DURATION, PROFILE).
.PHONY: bench-compare

bench-compare: build ## YCSB: Shale vs etcd on this machine, Markdown report in bench/results/ (about 20 min)
	bench/compare.sh
