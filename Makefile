# Chaperone's front door: build, test, bench, demo, and a test control plane by hand.
# Every npm script runs on the pinned Node 24 (devDependency `node@24`, first on PATH under npm).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
NPM ?= npm
export CHAPERONE_CACHE ?= $(HOME)/.cache/chaperone

.PHONY: all deps bench-deps build lint typecheck unit integration e2e test bench demo cluster-bins cluster-up cluster-down clean

all: build

node_modules/.package-lock.json: package.json package-lock.json
	@echo "==> installing npm dependencies (npm ci)"
	$(NPM) ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

build: deps
	@echo "==> compiling TypeScript to dist/ (tsc)"
	$(NPM) run --silent build

typecheck: deps
	@echo "==> type-checking (tsc --noEmit)"
	$(NPM) run --silent typecheck

lint: typecheck
	@echo "==> linting (eslint + typescript-eslint)"
	$(NPM) run --silent lint

unit: deps
	@echo "==> unit tests (node:test, pure modules)"
	$(NPM) run --silent test:unit

cluster-bins:
	@echo "==> test control plane binaries (kube-apiserver, etcd, helm) cached under $(CHAPERONE_CACHE)/bin"
	bash test/cluster/build-tools.sh

integration: deps cluster-bins
	@echo "==> integration tests (real kube-apiserver + etcd, real PostgreSQL, real clients)"
	$(NPM) run --silent test:integration

e2e: deps cluster-bins
	@echo "==> end-to-end tests"
	$(NPM) run --silent test:e2e

test: lint unit integration e2e
	@echo "==> checking that no test left a process or temp dir behind"
	$(NPM) run --silent test:leftovers
	@echo "==> all tests passed"

bench-deps:
	@echo "==> benchmark peers from Debian (pgbouncer, haproxy) if missing"
	command -v pgbouncer >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; }
	command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; }

bench: deps bench-deps cluster-bins
	@echo "==> benchmarks (results in bench/results/*.json; quoted in docs/benchmarks.md)"
	$(NPM) run --silent bench

demo: deps cluster-bins
	@echo "==> demo: the quick start on a local control plane (kube-apiserver + etcd), PostgreSQL, the operator and its injected sidecar; psql/curl as the agent, kubectl chaperone approve as the approver"
	$(NPM) run --silent demo

cluster-up: deps cluster-bins
	@echo "==> starting a test control plane (etcd + kube-apiserver on loopback); Ctrl-C or 'make cluster-down' stops it"
	$(NPM) run --silent cluster-up

cluster-down:
	@echo "==> stopping the test control plane started by 'make cluster-up'"
	$(NPM) run --silent cluster-down

clean:
	@echo "==> removing dist/ and bench temp files (the Go binary cache in $(CHAPERONE_CACHE) stays)"
	rm -rf dist bench/results/*.tmp
