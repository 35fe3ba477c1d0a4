# Every target creates the environment it needs from pinned files: a fresh clone needs only python3.11 + node/npm.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP_VERSION := 25.3
# uv installs the pinned set in about a minute where pip takes about four (parallel downloads and unpacking);
# pip stays in the environment for the Lambda bundling (`pip install --platform ...`). --compile-bytecode, as
# pip does: where PYTHONDONTWRITEBYTECODE is set, nothing else writes .pyc files, and every test process
# would compile TensorFlow's ~1,800 modules again.
UV_VERSION := 0.9.5
UV := $(VENV)/bin/uv
# The system's certificate store, as pip uses it: behind a TLS-inspecting proxy uv's built-in roots fail.
export UV_NATIVE_TLS := 1
# pytest workers (pytest-xdist): one per core; each test module runs whole on one worker, so its fixtures
# are built once.
PYTEST_WORKERS ?= auto
# jsii (aws-cdk-lib's runtime) prints a large banner on Node 20; the pinned CLI works with it.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := quiet
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true

REQUIREMENTS := requirements.txt requirements-dev.txt constraints.txt $(wildcard lambdas/*/requirements.txt) $(wildcard training/requirements.txt) pyproject.toml

.PHONY: help demo lock venv node lint format typecheck pytest synth cfn-lint test bench clean

help:
	@echo "make demo   render designs, run a local sweep whose bad jobs stop themselves, write the report"
	@echo "make test   lint, type-check, unit + integration tests, synth with cdk-nag, cfn-lint"
	@echo "make synth  synthesize every stack into cdk.out/ (cdk-nag AwsSolutions enforced)"
	@echo "make bench  run the benchmarks and rewrite docs/benchmarks.md"

$(VENV)/.installed: $(REQUIREMENTS)
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION) uv==$(UV_VERSION)
	$(UV) pip install --quiet --python $(PY) --compile-bytecode -r requirements-dev.txt -c constraints.txt
	$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

# Re-freeze every transitive pin after changing a requirements file (pip then never searches versions).
lock:
	rm -rf .cache/lock-venv
	$(PYTHON_BOOTSTRAP) -m venv .cache/lock-venv
	.cache/lock-venv/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	.cache/lock-venv/bin/python -m pip install --quiet -r requirements-dev.txt
	{ sed -n '1,3p' constraints.txt; .cache/lock-venv/bin/python -m pip freeze; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .cache/lock-venv

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

node: node_modules/.installed

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: venv
	$(VENV)/bin/mypy infra lambdas app.py

pytest: venv
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadscope

# `cdk synth` runs app.py, which adds cdk-nag's AwsSolutions checks as a validation plugin:
# any unacknowledged finding fails the synth.
synth: venv node
	rm -rf cdk.out
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npx cdk synth --quiet

cfn-lint: synth
	$(VENV)/bin/cfn-lint --format parseable cdk.out/*.template.json

# The checks run two at a time once the environments exist: mypy and the synth are single-threaded, so
# beside pytest they use what its workers leave of the cores instead of adding minutes after it.
test: venv node
	$(MAKE) --no-print-directory --jobs=2 lint typecheck pytest cfn-lint
	@echo "make test: all checks passed"

# The main job, locally, no AWS account: render designs, transform them into shards, run a sweep whose bad
# jobs stop themselves, and write the report under runs/.
demo: venv
	$(PY) -m training.demo

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(UV) pip install --quiet --python $(PY) --compile-bytecode -r requirements-bench.txt -c constraints.txt
	touch $@

bench: venv $(VENV)/.bench-installed
	$(PY) -m bench

clean:
	rm -rf cdk.out .cache .pytest_cache .mypy_cache .ruff_cache
